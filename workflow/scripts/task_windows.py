"""Rule task_windows: the sequences of one split of a task dataset cut into train/validation/
test windows for a task corpus (dnalm.genome.windows.task_windows)."""

from dnalm.core.smk import run_script
from dnalm.genome.windows import task_windows


def main(smk):
    task_windows(
        smk.input.task,
        {k: smk.output[k] for k in ("train", "validation", "test", "summary")},
        smk.params.spec,
        smk.params.fractions,
        corpus=smk.wildcards.tcorpus,
    )


run_script(snakemake, main)
