"""Rules probe_kmer and probe_kmer_kind: the same probe on k-mer frequency vectors (baseline
row; logistic regression, or the wildcard's kind)."""

from dnalm.core.config import ProbeConfig
from dnalm.core.smk import run_script
from dnalm.evaluation.probe import probe_kmer


def main(smk):
    probe_kmer(
        smk.input.task,
        smk.output.metrics,
        k=int(smk.wildcards.k),
        cv_folds=int(ProbeConfig.from_dict(smk.params.probe, "probe").cv_folds),
        kind=dict(smk.wildcards).get("pkind", "logreg"),
    )


run_script(snakemake, main)
