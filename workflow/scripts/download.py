"""Rules download_primary / download_annotation: fetch a sample's genome or annotation
(NCBI accession or URL) to resources/genomes/{sample}/, atomically, retried and verified."""

from pathlib import Path

from dnalm.core.smk import run_script
from dnalm.genome.download import acquire


def main(smk):
    s = smk.params.sample
    cfg = smk.params.cfg
    out = Path(smk.output[0])
    annotation = smk.rule == "download_annotation"
    acquire(
        s.sample,
        s.annotation if annotation else s.source,
        out.parent,
        filename=out.name,
        md5=(s.annotation_md5 if annotation else s.md5) or None,
        sha256=None if annotation else (s.sha256 or None),
        kind="annotation" if annotation else "genome",
        ncbi_file=s.ncbi_file,
        ncbi_base_url=cfg["ncbi_base_url"],
        retries=cfg["retries"],
        backoff=cfg["backoff_seconds"],
        timeout=cfg["timeout_seconds"],
    )


run_script(snakemake, main)
