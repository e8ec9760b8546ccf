"""Rule split_cds: assign one sample's CDS to train/validation/test (dnalm.genome.splits)."""

from dnalm.core.smk import run_script
from dnalm.genome.splits import split_sample


def main(smk):
    split_sample(
        smk.wildcards.sample,
        smk.input[0],
        {s: smk.output[s] for s in ("train", "validation", "test")},
        smk.output.assignment,
        seed=smk.params.seed,
        fractions=smk.params.fractions,
        allow_empty=smk.params.allow_empty,
    )


run_script(snakemake, main)
