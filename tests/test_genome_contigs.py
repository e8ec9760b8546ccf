"""Per-sample genome FASTA, contig table and feature table (dnalm.genome.contigs,
dnalm.genome.features) on the real shared genomes: contig names and lengths equal the
source's, feature counts equal the figures of the shared data's README."""

from __future__ import annotations

import gzip
from collections import Counter

import pytest
from Bio import SeqIO

from dnalm.core.errors import InputFormatError, SampleSheetError
from dnalm.core.io import read_fasta
from dnalm.genome.cds import run_cds
from dnalm.genome.contigs import (
    CONTIG_COLUMNS,
    iter_contigs,
    read_contig_table,
    read_genome_fasta,
    write_genome,
)
from dnalm.genome.features import (
    FEATURE_COLUMNS,
    Feature,
    genome_features,
    read_features,
    write_features,
)


def build(tmp_path, sample, fmt, source, annotation=None, annotate="", cds_table=None):
    """Genome FASTA + contig table + features of one sample, through the files."""
    out = tmp_path / sample
    write_genome(sample, fmt, source, out / "genome.fa.gz", out / "contigs.tsv")
    contigs = read_contig_table(out / "contigs.tsv")
    lengths = {c.contig: c.length for c in contigs}
    feats = genome_features(sample, fmt, lengths, source, annotation, annotate, cds_table)
    write_features(feats, out / "features.tsv")
    return out, contigs, read_features(out / "features.tsv")


def check_sorted_and_inside(feats, contigs):
    lengths = {c.contig: c.length for c in contigs}
    keys = [(f.contig, f.start) for f in feats]
    assert keys == sorted(keys)
    for f in feats:
        assert 0 <= f.start < f.end <= lengths[f.contig], f
        assert f.strand in ("+", "-")


def test_yeast_chrIV_fasta_gff(shared_data, tmp_path):
    fa = shared_data / "fasta_gff" / "sacCer3_chrIV.fa.gz"
    gtf = shared_data / "fasta_gff" / "sacCer3_chrIV.annotation.gtf.gz"
    out, contigs, feats = build(tmp_path, "yeast", "fasta_gff", fa, gtf)
    source = [(h.split()[0], s) for h, s, _ in read_fasta(fa)]
    assert [(c.contig, c.length) for c in contigs] == [(n, len(s)) for n, s in source]
    assert contigs[0].contig == "chrIV"
    assert contigs[0].length == 1_531_933
    assert list(read_genome_fasta(out / "genome.fa.gz")) == source  # case and all
    with gzip.open(out / "genome.fa.gz", "rt") as fh:
        assert fh.readline() == ">chrIV\n"
    counts = Counter(f.type for f in feats)
    # README: 885 transcripts (one gene each, no gene rows: spans of gene_id), 870 CDS rows
    # (stop codons folded in, no new rows), 924 exons
    assert counts == {"gene": 885, "CDS": 870, "exon": 924}
    cds = Counter()
    for f in feats:
        if f.type == "CDS":
            cds[f.name] += f.end - f.start
    assert len(cds) == 836  # README: 836 complete CDS
    assert all(n % 3 == 0 for n in cds.values())
    check_sorted_and_inside(feats, contigs)
    # the CDS rows cover exactly what CDS extraction reads
    run_cds("yeast", "fasta_gff", fa, tmp_path / "c.fa.gz", tmp_path / "c.tsv", annotation=gtf)
    lengths = {h.split()[0]: len(s) for h, s, _ in read_fasta(tmp_path / "c.fa.gz")}
    assert lengths == dict(cds)


def test_spyogenes_gbff(shared_data, tmp_path):
    gb = shared_data / "genbank" / "Streptococcus_pyogenes_M1_GAS.gb.gz"
    out, contigs, feats = build(tmp_path, "spyogenes", "gbff", gb)
    with gzip.open(gb, "rt") as fh:
        record = next(SeqIO.parse(fh, "genbank"))
    assert [(c.contig, c.length) for c in contigs] == [(record.id, len(record.seq))]
    assert contigs[0].length == 1_852_441
    assert contigs[0].n_count == 0
    ((_, seq),) = read_genome_fasta(out / "genome.fa.gz")
    assert seq == str(record.seq)
    counts = Counter(f.type for f in feats)
    # README: 1,853 CDS, no gene features; a prokaryote CDS is its gene's one exon
    assert counts == {"CDS": 1853, "exon": 1853}
    check_sorted_and_inside(feats, contigs)


def test_multi_record_gbff_and_spliced_and_origin_spanning_cds(shared_data, tmp_path):
    """Two real records in one file (chloroplast with 15 spliced CDS, phiX174 with a CDS
    across the origin): one contig each, one row per part."""
    both = tmp_path / "two.gb"
    both.write_text(
        (shared_data / "genbank" / "NC_000932.gb").read_text()
        + (shared_data / "genbank" / "NC_001422.gbk").read_text()
    )
    _, contigs, feats = build(tmp_path, "two", "gbff", both)
    assert [(c.contig, c.length) for c in contigs] == [
        ("NC_000932.1", 154_478),
        ("NC_001422.1", 5_386),
    ]
    by = {c: [f for f in feats if f.contig == c] for c in ("NC_000932.1", "NC_001422.1")}
    chloroplast_cds = Counter(f.name for f in by["NC_000932.1"] if f.type == "CDS")
    assert len(chloroplast_cds) == 85  # README: 85 CDS
    assert sum(n > 1 for n in chloroplast_cds.values()) >= 15  # spliced (and trans-spliced)
    phix = [f for f in by["NC_001422.1"] if f.type == "CDS"]
    assert len({f.name for f in phix}) == 11  # README: 11 CDS
    # three CDS run across the origin (join(3981..5386,1..136) and two more): two rows each
    wrapped = Counter(f.name for f in phix)
    assert sorted(wrapped.values()) == [1] * 8 + [2] * 3
    for name in (n for n, k in wrapped.items() if k == 2):
        left, right = sorted((f.start, f.end) for f in phix if f.name == name)
        assert left[0] == 0
        assert right[1] == 5_386
    check_sorted_and_inside(feats, contigs)


def test_soft_masked_case_is_kept(shared_data, tmp_path):
    """Lower case (soft-masked repeats) survives into genome.fa.gz and is counted."""
    (_, seq), *_ = [(h, s) for h, s, _ in read_fasta(shared_data / "genbank/NC_005816.fna")]
    masked = seq[:1000] + seq[1000:3000].lower() + seq[3000:6000] + "N" * 9 + seq[6000:]
    fa = tmp_path / "masked.fa"
    fa.write_text(f">pPCP1 masked cut\n{masked}\n>empty\n>second\n{seq[:500]}\n")
    out, contigs, feats = build(tmp_path, "masked", "fasta", fa)
    assert [(c.contig, c.length, c.n_count) for c in contigs] == [
        ("pPCP1", len(masked), 9),
        ("second", 500, 0),
    ]
    assert contigs[0].lower_fraction == round(2000 / len(masked), 6)
    assert list(read_genome_fasta(out / "genome.fa.gz")) == [
        ("pPCP1", masked),
        ("second", seq[:500]),
    ]
    assert feats == []  # no annotation, no gene calling: header only
    with open(out / "features.tsv") as fh:
        assert fh.read() == "\t".join(FEATURE_COLUMNS) + "\n"
    with open(out / "contigs.tsv") as fh:
        assert fh.readline().rstrip("\n").split("\t") == list(CONTIG_COLUMNS)


def test_gene_called_features(shared_data, tmp_path):
    fna = shared_data / "genbank" / "NC_005816.fna"
    table = tmp_path / "cds.tsv"
    run_cds(
        "y", "fasta", fna, tmp_path / "cds.fa.gz", table, annotate="pyrodigal", annotate_mode="meta"
    )
    _, contigs, feats = build(tmp_path, "y", "fasta", fna, annotate="pyrodigal", cds_table=table)
    assert contigs[0].contig == "gi|45478711|ref|NC_005816.1|"
    assert Counter(f.type for f in feats) == {"gene": 9, "CDS": 9}
    first = feats[0]
    assert first == Feature(contigs[0].contig, 86, 1109, "+", "gene", f"{contigs[0].contig}_1")
    check_sorted_and_inside(feats, contigs)


def test_annotation_of_another_genome_is_refused(shared_data, tmp_path):
    fna = shared_data / "genbank" / "NC_005816.fna"
    gtf = shared_data / "fasta_gff" / "sacCer3_chrIV.annotation.gtf.gz"
    with pytest.raises(InputFormatError, match=r"annotation.gtf.gz:3: sequence id 'chrIV' is not"):
        build(tmp_path, "mixed", "fasta_gff", fna, gtf)


def test_cds_fasta_has_no_genome(shared_data, tmp_path):
    ffn = shared_data / "cds_fasta" / "ecoli_highly_expressed_genes.fasta"
    with pytest.raises(SampleSheetError, match=r"sample ecoli_hx has format cds_fasta"):
        write_genome("ecoli_hx", "cds_fasta", ffn, tmp_path / "g.fa.gz", tmp_path / "c.tsv")
    assert not list(tmp_path.iterdir())
    with pytest.raises(SampleSheetError, match=r"no genome sequence"):
        list(iter_contigs("cds_fasta", ffn, "ecoli_hx"))


def test_repeated_contig_name_is_refused(shared_data, tmp_path):
    seq = "".join(s for _, s, _ in read_fasta(shared_data / "genbank/NC_005816.fna"))
    fa = tmp_path / "dup.fa"
    fa.write_text(f">c1\n{seq[:100]}\n>c1 again\n{seq[100:200]}\n")
    with pytest.raises(InputFormatError, match=r"dup.fa:3: sequence name 'c1' repeats line 1"):
        write_genome("dup", "fasta", fa, tmp_path / "g.fa.gz", tmp_path / "c.tsv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dup.fa"]


def test_gff3_and_renamed_gtf_give_the_same_features(shared_data, tmp_path):
    """The yeast GTF rewritten as GFF3 (gene/mRNA/exon rows, CDS rows with the stop codon
    inside, Parent links) gives the same feature table; so does the GTF with Ensembl-style
    sequence ids ('IV'), renamed to the genome's contig 'chrIV'."""
    from dnalm.core.io import open_text
    from dnalm.genome.gff import read_cds_models

    fa = shared_data / "fasta_gff" / "sacCer3_chrIV.fa.gz"
    gtf = shared_data / "fasta_gff" / "sacCer3_chrIV.annotation.gtf.gz"
    _, _, expected = build(tmp_path, "gtf", "fasta_gff", fa, gtf)
    with open_text(gtf) as fh:
        rows = [line.rstrip("\n").split("\t") for line in fh if line.strip()]
    lines = ["##gff-version 3"]
    for c in rows:
        tid = c[8].split('transcript_id "')[1].split('"')[0]
        gid = c[8].split('gene_id "')[1].split('"')[0]
        if c[2] == "transcript":
            lines.append("\t".join([*c[:2], "gene", *c[3:8], f"ID={gid};Name={gid}"]))
            lines.append("\t".join([*c[:2], "mRNA", *c[3:8], f"ID={tid};Parent={gid}"]))
        elif c[2] == "exon":
            lines.append("\t".join([*c[:8], f"Parent={tid}"]))
    for m in read_cds_models(gtf):
        for s, e in m.segments:
            lines.append(f"chrIV\tt\tCDS\t{s + 1}\t{e}\t.\t{m.strand}\t0\tParent={m.transcript_id}")
    gff3 = tmp_path / "yeast.gff3"
    gff3.write_text("\n".join(lines) + "\n")
    _, _, got = build(tmp_path, "gff3", "fasta_gff", fa, gff3)
    assert got == expected
    renamed = tmp_path / "ensembl.gtf"
    with open_text(gtf) as fh:
        renamed.write_text("".join(line.replace("chrIV\t", "IV\t", 1) for line in fh))
    _, _, got = build(tmp_path, "ensembl", "fasta_gff", fa, renamed)
    assert got == expected
