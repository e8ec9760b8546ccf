"""Rule cds_qc: the QC summary table and plot across samples (dnalm.cds)."""

from dnalm.cds import plot_qc, qc_summary, read_cds_tables
from dnalm.io import atomic_write
from dnalm.smk import run_script


def main(smk):
    per_cds = read_cds_tables(list(smk.input.tsv))
    summary = qc_summary(per_cds)
    with atomic_write(smk.output.summary) as fh:
        summary.to_csv(fh, sep="\t", index=False)
    plot_qc(summary, per_cds, smk.output.png)


run_script(snakemake, main)
