"""Rule cds_qc_figure: the CDS QC figure, drawn from the QC summary table and the per-sample
CDS tables (dnalm.report.cds_plots)."""

from dnalm.core.smk import run_script
from dnalm.genome.qc import read_cds_tables, read_qc_summary
from dnalm.report.cds_plots import plot_qc


def main(smk):
    plot_qc(read_qc_summary(smk.input.summary), read_cds_tables(smk.params.tsv), smk.output.png)


run_script(snakemake, main)
