"""Rule cluster_cds: cluster the CDS of all samples with MMseqs2 (dnalm.genome.homology)."""

from dnalm.core.smk import run_script
from dnalm.genome.homology import cluster_cds


def main(smk):
    samples = list(smk.params.samples)
    cluster_cds(
        dict(zip(samples, smk.input.fasta, strict=True)),
        smk.output[0],
        smk.params.mmseqs,
        cds_tables=dict(zip(samples, smk.input.tsv, strict=True)),
        threads=smk.threads,
    )


run_script(snakemake, main)
