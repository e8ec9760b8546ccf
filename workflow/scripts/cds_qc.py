"""Rule cds_qc: the QC summary table and plot across samples (dnalm.cds)."""

from dnalm.cds import write_qc_summary
from dnalm.smk import run_script


def main(smk):
    write_qc_summary(list(smk.input.tsv), smk.output.summary, smk.output.png)


run_script(snakemake, main)
