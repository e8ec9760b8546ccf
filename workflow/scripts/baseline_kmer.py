"""Rule baseline_kmer: k-mer frequencies + logistic/ridge regression on one task."""

from pathlib import Path

from dnalm.baselines import run_kmer_baseline
from dnalm.finetune import validate_task_table
from dnalm.smk import run_script
from dnalm.tasks import load_task


def main(smk):
    df = load_task(smk.input.task)
    validate_task_table(df, df.attrs["kind"], smk.input.task)
    run_kmer_baseline(
        df, Path(smk.output.metrics).parent, k=int(smk.wildcards.k), task=smk.wildcards.ftask
    )


run_script(snakemake, main)
