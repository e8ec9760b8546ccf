"""Rules download_primary / download_annotation: fetch a sample's genome or annotation
(NCBI accession or URL) to resources/genomes/{sample}/, atomically, retried and verified."""

from dnalm.download import fetch_sample_file
from dnalm.smk import run_script


def main(smk):
    which = "annotation" if smk.rule == "download_annotation" else "primary"
    cfg = smk.params.cfg
    fetch_sample_file(
        smk.params.sample,
        which,
        smk.output[0],
        ncbi_base_url=cfg["ncbi_base_url"],
        retries=cfg["retries"],
        backoff=cfg["backoff_seconds"],
        timeout=cfg["timeout_seconds"],
    )


run_script(snakemake, main)
