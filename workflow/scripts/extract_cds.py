"""Rule extract_cds: coding sequences of one sample with a per-CDS QC table (dnalm.cds)."""

from dnalm.cds import DropPolicy, extract_cds, write_cds_outputs
from dnalm.smk import run_script


def main(smk):
    s = smk.params.sample
    result = extract_cds(
        s.sample,
        s.format,
        smk.input.primary,
        annotation=smk.input.annotation or None,
        genetic_code=s.genetic_code,
        policy=DropPolicy(**smk.params.policy),
    )
    write_cds_outputs(result, smk.output.fasta, smk.output.tsv)


run_script(snakemake, main)
