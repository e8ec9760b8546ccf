"""Rule gene_completion_summary: every model's and baseline's gene completion in one table
(bootstrap intervals over genes), and its figure."""

from dnalm.core.smk import run_script
from dnalm.generation.genecomp import summary_table
from dnalm.report.genecomp_plots import plot_gene_completion


def main(smk):
    tables = dict(zip(smk.params.sources, smk.input.tables, strict=True))
    summary_table(tables, smk.output.table)
    plot_gene_completion(smk.output.table, smk.output.figure)


run_script(snakemake, main)
