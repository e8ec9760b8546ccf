"""Rule suite_table: one table and one figure per benchmark suite, from its tasks'
comparison tables (dnalm.finetuning.suite_table)."""

from pathlib import Path

from dnalm.core.smk import run_script
from dnalm.finetuning.suite_table import write_suite_table
from dnalm.report.suite_plots import plot_suite


def main(smk):
    tables = {Path(p).parent.name: p for p in smk.input}
    long = write_suite_table(tables, smk.params.published, smk.output.table)
    plot_suite(long, smk.output.figure, title=f"suite {smk.wildcards.suite}")


run_script(snakemake, main)
