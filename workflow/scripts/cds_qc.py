"""Rule cds_qc: the QC summary table across samples (dnalm.genome.qc)."""

from dnalm.core.smk import run_script
from dnalm.genome.qc import write_qc_summary


def main(smk):
    write_qc_summary(list(smk.input.tsv), smk.output.summary)


run_script(snakemake, main)
