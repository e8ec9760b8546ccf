"""Rule genome_features: a sample's gene/CDS/exon/UTR intervals on its contigs
(dnalm.genome.features)."""

from dnalm.core.smk import run_script
from dnalm.genome.contigs import read_contig_table
from dnalm.genome.features import genome_features, write_features


def main(smk):
    s = smk.params.sample
    lengths = {c.contig: c.length for c in read_contig_table(smk.input.contigs)}
    features = genome_features(
        s.sample,
        s.format,
        lengths,
        source=smk.input.get("primary"),
        annotation=smk.input.get("annotation"),
        annotate=s.annotate,
        cds_table=smk.input.get("cds"),
    )
    write_features(features, smk.output[0])


run_script(snakemake, main)
