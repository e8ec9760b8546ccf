"""Rule split_cds: assign one sample's CDS to train/validation/test (dnalm.genome.splits); under
``splits.method: mmseqs`` by the MMseqs2 cluster of each CDS (dnalm.genome.homology)."""

from dnalm.core.smk import run_script
from dnalm.genome.homology import read_clusters
from dnalm.genome.splits import split_sample


def main(smk):
    sample = smk.wildcards.sample
    clusters = None
    if smk.params.method == "mmseqs":
        clusters = read_clusters(smk.input.clusters, sample)
    split_sample(
        sample,
        smk.input.cds,
        {s: smk.output[s] for s in ("train", "validation", "test")},
        smk.output.assignment,
        seed=smk.params.seed,
        fractions=smk.params.fractions,
        allow_empty=smk.params.allow_empty,
        clusters=clusters,
    )


run_script(snakemake, main)
