"""Rule genome_fasta: a sample's genome as gzip FASTA, one record per contig, case kept,
with its contig table (dnalm.genome.contigs)."""

from dnalm.core.smk import run_script
from dnalm.genome.contigs import write_genome


def main(smk):
    s = smk.params.sample
    write_genome(s.sample, s.format, smk.input.primary, smk.output.fasta, smk.output.contigs)


run_script(snakemake, main)
