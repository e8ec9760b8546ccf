"""Rule split_cds (``splits.method: mmseqs``): assign one sample's CDS to
train/validation/test by the MMseqs2 cluster of each CDS (dnalm.genome.homology,
dnalm.genome.splits). Under ``identity`` rule extract_cds splits each sample itself."""

from dnalm.core.smk import run_script
from dnalm.genome.homology import read_clusters
from dnalm.genome.splits import SPLITS, split_sample


def main(smk):
    sample = smk.wildcards.sample
    split = smk.params.split
    split_sample(
        sample,
        smk.input.cds,
        {name: smk.output[name] for name in SPLITS},
        smk.output.assignment,
        seed=split["seed"],
        fractions=split["fractions"],
        allow_empty=split["allow_empty"],
        clusters=read_clusters(smk.input.clusters, sample),
    )


run_script(snakemake, main)
