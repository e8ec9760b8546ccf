"""Rule baseline_kmer: k-mer frequencies + logistic/ridge regression on one task."""

from pathlib import Path

from dnalm.core.smk import run_script
from dnalm.finetuning.kmer_baseline import run_kmer_baseline
from dnalm.finetuning.tables import load_task, validate_task_table


def main(smk):
    df = load_task(smk.input.task)
    validate_task_table(df, df.attrs["kind"], smk.input.task)
    run_kmer_baseline(
        df, Path(smk.output.metrics).parent, k=int(smk.wildcards.k), task=smk.wildcards.ftask
    )


run_script(snakemake, main)
