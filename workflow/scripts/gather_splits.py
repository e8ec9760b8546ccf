"""Rule gather_splits: join the per-sample assignments and prove there is no leakage."""

from dnalm.core.smk import run_script
from dnalm.genome.splits import gather_assignments


def main(smk):
    gather_assignments(list(smk.input.assignment), smk.output.assignment, smk.output.summary)


run_script(snakemake, main)
