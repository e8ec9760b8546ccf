"""Rule verify_sources: check a sample's genome (and annotation) files and record where
they came from in resources/genomes/{sample}/provenance.json."""

from dnalm.download import write_provenance
from dnalm.smk import run_script


def main(smk):
    write_provenance(
        smk.params.sample,
        primary=smk.input.primary,
        annotation=smk.input.annotation or None,
        out_json=smk.output[0],
    )


run_script(snakemake, main)
