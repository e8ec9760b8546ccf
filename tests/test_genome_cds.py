"""CDS extraction on real genomes (../shared/data): checked against NCBI's own CDS FASTA,
against every /translation of the shared GenBank files, and against the known figures of the
yeast GTF; plus the documented handling of odd locations and of bad input files."""

from __future__ import annotations

import argparse
import functools
import gzip
import logging
import re
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from Bio import BiopythonParserWarning, SeqIO
from Bio.Data import CodonTable

from dnalm.core.errors import ConfigError, InputFormatError, SampleSheetError
from dnalm.core.io import open_text, read_fasta
from dnalm.genome.cds import (
    DEFAULT_DROP,
    DropPolicy,
    extract_cds,
    register,
    run_cds,
    write_cds_outputs,
)
from dnalm.genome.cds_record import TSV_COLUMNS
from dnalm.genome.gff import detect_format, read_cds_models
from dnalm.genome.qc import qc_summary, read_cds_tables, read_qc_summary, write_qc_summary
from dnalm.report.cds_plots import plot_qc

GBFF_FILES = [
    "Streptococcus_pyogenes_M1_GAS.gb.gz",
    "ct.gbk.gz",
    "Mgallisepticum.gbff.gz",
    "phage_T4_test.gbff.gz",
    "NC_000932.gb",
    "D10483.gbk",
    "NC_005816.gb",
    "NC_001422.gbk",
    "bad_origin_wrap_CDS.gb",
    "one_of.gb",
    "extra_keywords.gb",
    "dmel_2Lchunk.gb",
]
YEAST_FA = "fasta_gff/sacCer3_chrIV.fa.gz"
YEAST_GTF = "fasta_gff/sacCer3_chrIV.annotation.gtf.gz"


@functools.cache
def _extract(path: str, genetic_code: int | None = None):
    return extract_cds(Path(path).name.split(".")[0], "gbff", path, genetic_code=genetic_code)


def _lines(path: Path) -> list[str]:
    with open_text(path) as fh:
        return fh.read().splitlines()


@functools.cache
def _features(path: str) -> list:
    """CDS features read with Biopython directly (independent of dnalm.genome.cds)."""
    with open_text(path) as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore", BiopythonParserWarning)
        return [f for rec in SeqIO.parse(fh, "genbank") for f in rec.features if f.type == "CDS"]


def _readme_cds_counts(shared: Path) -> dict[str, int]:
    """file -> CDS count from the genbank table of the shared data README."""
    counts = {}
    for line in (shared / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[4].isdigit():
            counts[cells[0].split()[0]] = int(cells[4])
    return counts


def _yeast(shared: Path, **kw):
    return extract_cds("yeast", "fasta_gff", shared / YEAST_FA, shared / YEAST_GTF, **kw)


# --------------------------------------------------------------------------- gbff, real data


def test_nc005816_equals_ncbi_ffn_and_faa(shared_data):
    """The 10 CDS of pPCP1 equal NCBI's own .ffn byte for byte, and translate to its .faa."""
    gb = shared_data / "genbank" / "NC_005816.gb"
    result = _extract(str(gb))
    ffn = [seq for _, seq, _ in read_fasta(gb.with_suffix(".ffn"))]
    faa = [seq for _, seq, _ in read_fasta(gb.with_suffix(".faa"))]
    ours = [r.sequence for r in result.records]
    assert len(ffn) == 10
    assert ours == ffn
    table = CodonTable.unambiguous_dna_by_id[11]
    for seq, protein in zip(ours, faa, strict=True):
        aa = "".join(
            table.forward_table.get(seq[i : i + 3], "*") for i in range(3, len(seq) - 3, 3)
        )
        assert "M" + aa == protein


def test_gbff_counts_reconcile_with_readme(shared_data):
    """Every CDS feature of every shared GBFF has exactly one row (kept or dropped)."""
    readme = _readme_cds_counts(shared_data)
    assert set(GBFF_FILES) <= set(readme) | {"NC_005816.gb"}
    for name in GBFF_FILES:
        path = str(shared_data / "genbank" / name)
        rows = _extract(path).rows
        assert len(rows) == len(_features(path)) == readme[name], name
        assert len({r["cds_id"] for r in rows}) == len(rows), name


@pytest.mark.parametrize("name", GBFF_FILES)
def test_kept_cds_translate_to_their_translation(shared_data, name):
    """Kept CDS carrying /translation translate to it with their genetic code; the only
    exceptions are CDS annotated with /exception (e.g. RNA editing)."""
    path = str(shared_data / "genbank" / name)
    result = _extract(path)
    feats = _features(path)
    assert len(feats) == len(result.rows)
    checked = 0
    for feat, row in zip(feats, result.rows, strict=True):
        if row["status"] != "kept" or "translation" not in feat.qualifiers:
            continue
        checked += 1
        if "exception" in feat.qualifiers and "RNA editing" in feat.qualifiers["exception"][0]:
            assert row["translation_match"] is False
            continue
        assert row["translation_match"] is True, (name, row)
        table = feat.qualifiers.get("transl_table")
        if table:
            assert row["genetic_code"] == int(table[0])
    kept = sum(r["status"] == "kept" for r in result.rows)
    assert checked == kept


def test_mgallisepticum_code4_pseudo_partial(shared_data):
    result = _extract(str(shared_data / "genbank" / "Mgallisepticum.gbff.gz"))
    rows = result.rows
    assert {r["genetic_code"] for r in rows} == {4}
    assert Counter(r["status"] for r in rows) == {"kept": 744 - 25, "pseudo": 25}
    assert sum("partial" in r["issues"].split(";") for r in rows) == 7
    # TGA is Trp in code 4: kept CDS contain in-frame TGA but no internal stop
    tga = sum(
        any(r.sequence[i : i + 3] == "TGA" for i in range(0, len(r.sequence) - 3, 3))
        for r in result.records
    )
    assert tga > 100
    assert not any(r["internal_stop"] for r in rows if r["status"] == "kept")


def test_sheet_genetic_code_overrides_transl_table(shared_data, caplog):
    """genetic_code=11 forced on a code-4 genome: TGA becomes a stop, CDS drop as
    internal_stop, and the override is reported."""
    path = str(shared_data / "genbank" / "Mgallisepticum.gbff.gz")
    with caplog.at_level(logging.WARNING, logger="dnalm"):
        result = extract_cds("mg", "gbff", path, genetic_code=11)
    assert {r["genetic_code"] for r in result.rows} == {11}
    assert Counter(r["status"] for r in result.rows)["internal_stop"] > 100
    assert "overrides a different /transl_table on 744 CDS" in caplog.text


def test_ct_default_code_and_two_translation_failures(shared_data):
    """ct.gbk has no /transl_table: the bacterial default 11 applies; its 2 CDS that fail
    translation are the partial ones at the ends of the record."""
    result = _extract(str(shared_data / "genbank" / "ct.gbk.gz"))
    assert not any(
        "transl_table" in f.qualifiers
        for f in _features(str(shared_data / "genbank" / "ct.gbk.gz"))
    )
    assert {r["genetic_code"] for r in result.rows} == {11}
    failed = [r for r in result.rows if r["translation_match"] is False]
    assert len(failed) == 2
    assert all(r["status"] == "partial" for r in failed)
    assert Counter(r["status"] for r in result.rows) == {"kept": 893, "partial": 2}


def test_d10483_one_partial(shared_data):
    result = _extract(str(shared_data / "genbank" / "D10483.gbk"))
    partial = [r for r in result.rows if r["status"] == "partial"]
    assert len(partial) == 1
    assert partial[0]["end"] == 111408  # complement(111310..>111408): open 5' end


def test_phix_origin_spanning_cds(shared_data):
    path = str(shared_data / "genbank" / "NC_001422.gbk")
    result = _extract(path)
    feats = _features(path)
    spanning = [
        (f, r)
        for f, r in zip(feats, result.rows, strict=True)
        if len(f.location.parts) == 2 and int(f.location.parts[1].start) == 0
    ]
    assert len(spanning) == 3  # join(3981..5386,1..136) etc.
    seqs = {r.cds_id: r.sequence for r in result.records}
    for feat, row in spanning:
        assert row["status"] == "kept"
        assert row["translation_match"] is True
        assert row["start"] > row["end"]  # wraps the origin
        first, second = feat.location.parts
        assert row["length"] == len(first) + len(second)
        assert len(seqs[row["cds_id"]]) == row["length"]


def test_bad_origin_wrap(shared_data):
    result = _extract(str(shared_data / "genbank" / "bad_origin_wrap_CDS.gb"))
    assert [r["translation_match"] for r in result.rows] == [True, True]
    assert [r["strand"] for r in result.rows] == ["-", "+"]


def test_remote_join_skipped_with_warning(shared_data, caplog):
    path = shared_data / "genbank" / "extra_keywords.gb"
    with caplog.at_level(logging.WARNING, logger="dnalm"):
        result = extract_cds("dmel_bac", "gbff", path)
    dropped = [r for r in result.rows if r["status"] != "kept"]
    assert [r["status"] for r in dropped] == ["remote_join"]
    assert dropped[0]["length"] is None
    assert re.search(r"record AL138972\.1 CDS #12 .*AL121804\.2", caplog.text)
    assert len(result.records) == 11


def test_one_of_remote_joins(shared_data, caplog):
    with caplog.at_level(logging.WARNING, logger="dnalm"):
        result = extract_cds("tmpo", "gbff", shared_data / "genbank" / "one_of.gb")
    assert [r["status"] for r in result.rows] == ["remote_join", "remote_join"]
    assert "partial" in result.rows[0]["issues"]  # U18269.1:82..>128
    assert caplog.text.count("U18267.1") >= 2


def test_unparseable_location_skipped(shared_data, caplog, tmp_path):
    path = shared_data / "genbank" / "dmel_2Lchunk.gb"
    with caplog.at_level(logging.WARNING, logger="dnalm"):
        result = extract_cds("dmel", "gbff", path)
    assert [r["status"] for r in result.rows] == ["unparseable_location"] * 6
    assert "record 2L:14000-19000 CDS #1 (gene l(2)gl): location could not be parsed" in caplog.text
    # nothing kept: the workflow rule refuses the sample and leaves no outputs
    fa, tsv = tmp_path / "d.fa.gz", tmp_path / "d.tsv"
    with pytest.raises(InputFormatError, match="none of the 6 CDS"):
        run_cds("dmel", "gbff", path, fa, tsv)
    assert list(tmp_path.iterdir()) == []


def _edited_copy(src: Path, dst: Path, *edits: tuple[str, str]) -> Path:
    text = src.read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    dst.write_text(text)
    return dst


def test_fuzzy_location_policy(shared_data, tmp_path, caplog):
    src = shared_data / "genbank" / "NC_005816.gb"
    path = _edited_copy(
        src, tmp_path / "f.gb", ("CDS             87..1109", "CDS             one-of(84,87)..1109")
    )
    with caplog.at_level(logging.WARNING, logger="dnalm"):
        result = extract_cds("f", "gbff", path)
    assert result.rows[0]["status"] == "fuzzy_location"
    assert "imprecise location" in caplog.text
    keep = extract_cds("f", "gbff", path, policy=DropPolicy(drop=DEFAULT_DROP - {"fuzzy_location"}))
    assert keep.rows[0]["status"] == "kept"


def test_default_code_mitochondrion_and_plastid(shared_data, tmp_path, caplog):
    src = shared_data / "genbank" / "NC_005816.gb"
    mito = _edited_copy(
        src,
        tmp_path / "mito.gb",
        ("                     /transl_table=11\n", ""),
        ("  ORGANISM  Yersinia pestis", "  ORGANISM  Homo sapiens"),
        ("Bacteria; Proteobacteria", "Eukaryota; Metazoa"),
        ('/plasmid="pPCP1"', '/organelle="mitochondrion"'),
    )
    with caplog.at_level(logging.WARNING, logger="dnalm"):
        result = extract_cds("mito", "gbff", mito)
    assert {r["genetic_code"] for r in result.rows} == {1}
    assert "mitochondrial codes vary" in caplog.text
    chloro = shared_data / "genbank" / "NC_000932.gb"
    plastid = _edited_copy(
        chloro, tmp_path / "cp.gb", ("                     /transl_table=11\n", "")
    )
    assert "transl_table" not in plastid.read_text()
    result = extract_cds("cp", "gbff", plastid)
    assert {r["genetic_code"] for r in result.rows} == {11}


# --------------------------------------------------------------------------- fasta_gff


def _gtf_models(shared: Path) -> dict[str, dict]:
    """Per transcript: CDS rows and stop_codon rows straight from the GTF."""
    out: dict[str, dict] = {}
    with gzip.open(shared / YEAST_GTF, "rt") as fh:
        for line in fh:
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 9 or cols[2] not in ("CDS", "stop_codon"):
                continue
            tid = re.search(r'transcript_id "([^"]+)"', cols[8]).group(1)
            entry = out.setdefault(tid, {"CDS": [], "stop_codon": [], "strand": cols[6]})
            entry[cols[2]].append((int(cols[3]), int(cols[4])))
    return out


def test_yeast_gtf_836_complete_cds(shared_data):
    result = _yeast(shared_data)
    assert len(result.rows) == len(result.records) == 836
    stops = set(CodonTable.unambiguous_dna_by_id[1].stop_codons)
    gtf = _gtf_models(shared_data)
    multi_minus = 0
    for rec, row in zip(result.records, result.rows, strict=True):
        seq = rec.sequence
        assert seq.startswith("ATG")
        assert seq[-3:] in stops
        assert len(seq) % 3 == 0
        assert not any(seq[i : i + 3] in stops for i in range(0, len(seq) - 3, 3))
        assert set(seq) <= set("ACGT")  # upper-cased soft-masked genome
        model = gtf[row["cds_id"]]
        # the stop codon rows were added back to the CDS rows
        assert len(seq) == sum(e - s + 1 for s, e in model["CDS"]) + 3
        multi_minus += model["strand"] == "-" and len(model["CDS"]) > 1
    assert multi_minus > 0


def test_gff3_gives_the_same_cds_as_gtf(shared_data, tmp_path):
    """A GFF3 written from the GTF (stop codon inside the CDS rows, Parent links) yields the
    same sequences; detection by column 9 when the name says nothing."""
    gtf = _gtf_models(shared_data)
    lines = ["##gff-version 3"]
    for tid, m in gtf.items():
        rows = sorted(m["CDS"] + m["stop_codon"])
        merged = [list(rows[0])]
        for s, e in rows[1:]:
            if s == merged[-1][1] + 1:
                merged[-1][1] = e
            else:
                merged.append([s, e])
        gene = tid.removesuffix("_mRNA")
        lines.append(
            f"chrIV\tt\tgene\t{merged[0][0]}\t{merged[-1][1]}\t.\t{m['strand']}\t.\tID={gene};Name={gene}"
        )
        lines.append(
            f"chrIV\tt\tmRNA\t{merged[0][0]}\t{merged[-1][1]}\t.\t{m['strand']}\t.\tID={tid};Parent={gene}"
        )
        for s, e in merged:
            lines.append(f"chrIV\tt\tCDS\t{s}\t{e}\t.\t{m['strand']}\t0\tID=cds-{tid};Parent={tid}")
    ann = tmp_path / "annotation.txt"
    ann.write_text("\n".join(lines) + "\n")
    assert detect_format(ann) == "gff3"
    assert detect_format(shared_data / YEAST_GTF) == "gtf"
    gff_result = extract_cds("y3", "fasta_gff", shared_data / YEAST_FA, ann)
    gtf_result = _yeast(shared_data)
    assert [(r.cds_id, r.sequence) for r in gff_result.records] == [
        (r.cds_id, r.sequence) for r in gtf_result.records
    ]
    assert {r["gene"] for r in gff_result.rows} == {r["locus_tag"] for r in gtf_result.rows}


def test_gff_phase_marks_partial(shared_data, tmp_path):
    """A first CDS segment with phase 1 is trimmed by one base and flagged partial."""
    gtf = _lines(shared_data / YEAST_GTF)
    first = next(line for line in gtf if "\tCDS\t" in line)
    cols = first.split("\t")
    cols[3], cols[7] = str(int(cols[3]) - 1), "1"
    ann = tmp_path / "one.gtf"
    ann.write_text("\t".join(cols) + "\n")
    (model,) = read_cds_models(ann)
    assert model.phase == 1
    assert model.partial5
    result = extract_cds("p", "fasta_gff", shared_data / YEAST_FA, ann)
    assert result.rows[0]["status"] == "partial"
    assert DropPolicy(drop=frozenset()).status(result.rows[0]["issues"].split(";")) == "kept"
    keep = extract_cds("p", "fasta_gff", shared_data / YEAST_FA, ann, policy=DropPolicy(drop=()))
    assert keep.records[0].sequence.startswith("ATG")


def _yeast_cds_lines(shared: Path) -> tuple[list[str], list[int]]:
    """The yeast GTF's lines and the indices of its CDS rows."""
    lines = _lines(shared / YEAST_GTF)
    return lines, [i for i, line in enumerate(lines) if "\tCDS\t" in line]


def test_gtf_exact_duplicate_cds_rows_dropped_with_warning(shared_data, tmp_path, caplog):
    """Every CDS row (and stop codon) written twice: the duplicates are dropped with a
    warning naming the line, and every CDS is the one of the clean GTF, not twice as long."""
    lines, _ = _yeast_cds_lines(shared_data)
    doubled = []
    for line in lines:
        doubled.append(line)
        if "\tCDS\t" in line or "\tstop_codon\t" in line:
            doubled.append(line)
    ann = tmp_path / "doubled.gtf"
    ann.write_text("\n".join(doubled) + "\n")
    with caplog.at_level(logging.WARNING, logger="dnalm"):
        result = extract_cds("yeast", "fasta_gff", shared_data / YEAST_FA, ann)
    clean = _yeast(shared_data)
    assert [(r.cds_id, r.sequence) for r in result.records] == [
        (r.cds_id, r.sequence) for r in clean.records
    ]
    first = next(i for i, line in enumerate(doubled) if "\tCDS\t" in line) + 2
    assert re.search(
        rf"doubled\.gtf: \d+ CDS/stop_codon row\(s\) repeat .*line {first}\b", caplog.text
    )


def test_gtf_overlapping_cds_rows_flagged_and_counted(shared_data, tmp_path, caplog):
    """A CDS row repeated 3 nt further on: that transcript's CDS is dropped as
    overlapping_segments (not extracted with a repeated stretch), counted in the QC summary;
    the other CDS are untouched."""
    lines, cds_rows = _yeast_cds_lines(shared_data)
    i = cds_rows[5]
    cols = lines[i].split("\t")
    cols[3], cols[4] = str(int(cols[3]) + 3), str(int(cols[4]) + 3)
    shifted = [*lines[: i + 1], "\t".join(cols), *lines[i + 1 :]]
    tid = re.search(r'transcript_id "([^"]+)"', lines[i]).group(1)
    ann = tmp_path / "shifted.gtf"
    ann.write_text("\n".join(shifted) + "\n")
    with caplog.at_level(logging.WARNING, logger="dnalm"):
        result = extract_cds("yeast", "fasta_gff", shared_data / YEAST_FA, ann)
    status = {r["cds_id"]: r["status"] for r in result.rows}
    assert status[tid] == "overlapping_segments"
    assert Counter(status.values()) == {"kept": 835, "overlapping_segments": 1}
    clean = {r.cds_id: r.sequence for r in _yeast(shared_data).records}
    assert all(clean[r.cds_id] == r.sequence for r in result.records)
    assert f"CDS rows of {tid} overlap" in caplog.text
    write_cds_outputs(result, tmp_path / "y.fa", tmp_path / "y.tsv")
    summary = qc_summary([tmp_path / "y.tsv"])
    assert summary.loc[0, "dropped_overlapping_segments"] == 1
    # a one-base overlap (a -1 ribosomal frameshift as NCBI writes it) is still read as given
    (model,) = read_cds_models(_one_base_overlap(tmp_path))
    assert model.problems == []
    assert model.length == 21


def _one_base_overlap(tmp_path: Path) -> Path:
    ann = tmp_path / "slip.gff3"
    ann.write_text(
        "##gff-version 3\n"
        "c\tt\tCDS\t1\t10\t.\t+\t0\tID=c1;Parent=t1\n"
        "c\tt\tCDS\t10\t20\t.\t+\t0\tID=c1;Parent=t1\n"
    )
    return ann


def test_gff_seqid_missing_from_fasta(shared_data, tmp_path):
    gtf = _lines(shared_data / YEAST_GTF)
    ann = tmp_path / "bad.gtf"
    ann.write_text("\n".join(line.replace("chrIV", "chrXX", 1) for line in gtf[:20]) + "\n")
    with pytest.raises(
        InputFormatError,
        match=r"sample yeast: .*bad\.gtf:3: sequence id 'chrXX' is not in the genome FASTA.*chrIV",
    ):
        extract_cds("yeast", "fasta_gff", shared_data / YEAST_FA, ann)


def test_gff_chr_prefix_alias(shared_data, tmp_path, caplog):
    gtf = _lines(shared_data / YEAST_GTF)
    ann = tmp_path / "ens.gtf"
    ann.write_text("\n".join(line.replace("chrIV", "IV", 1) for line in gtf[:20]) + "\n")
    with caplog.at_level(logging.WARNING, logger="dnalm"):
        result = extract_cds("yeast", "fasta_gff", shared_data / YEAST_FA, ann)
    assert result.n_kept == 4
    assert "'IV' matched FASTA sequence 'chrIV'" in caplog.text


def test_genome_fasta_with_bad_character(shared_data, tmp_path):
    header, seq = _lines(shared_data / YEAST_FA)[:2]
    lines = [header] + [seq[i : i + 60] for i in range(0, 6000, 60)]
    lines[41] = lines[41][:7] + "*" + lines[41][8:]
    fa = tmp_path / "genome.fa"
    fa.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFormatError, match=r"genome\.fa:42:8: character '\*' is not an IUPAC"):
        extract_cds("yeast", "fasta_gff", fa, shared_data / YEAST_GTF)


# --------------------------------------------------------------------------- cds_fasta


def test_cds_fasta_ecoli(shared_data):
    path = shared_data / "cds_fasta" / "ecoli_highly_expressed_genes.fasta"
    headers = [h.split()[0] for h, _, _ in read_fasta(path)]
    result = extract_cds("ecoli", "cds_fasta", path, genetic_code=11)
    assert [r["cds_id"] for r in result.rows] == headers
    assert len(result.rows) == 94
    assert all(r["genetic_code"] == 11 for r in result.rows)
    lengths = [r["length"] for r in result.rows]
    assert min(lengths) == 210
    assert max(lengths) == 4029
    # code 1 has fewer start codons than code 11: its start flags can only get worse
    code1 = extract_cds("ecoli", "cds_fasta", path)
    assert sum(r["start_codon_ok"] for r in code1.rows) <= sum(
        r["start_codon_ok"] for r in result.rows
    )


def test_cds_fasta_ids_case_and_tags(shared_data, tmp_path, caplog):
    src = list(read_fasta(shared_data / "cds_fasta" / "ecoli_highly_expressed_genes.fasta"))
    (h0, s0, _), (_, s1, _) = src[0], src[1]
    text = (
        f">{h0} [transl_table=11] [gene=abc]\n{s0.lower().replace('t', 'u')}\n"
        f">{h0} second copy\n{s1[:60]}\n{s1[60:]}\n"
        f">x [pseudo=true]\n{s1}\n"
    )
    path = tmp_path / "cds.fa"
    path.write_text(text)
    with caplog.at_level(logging.WARNING, logger="dnalm"):
        result = extract_cds("e", "cds_fasta", path)
    assert [r["cds_id"] for r in result.rows] == [h0, f"{h0}_2", "x"]
    assert "repeated" in caplog.text
    assert result.records[0].sequence == s0.upper()
    assert result.rows[0]["genetic_code"] == 11
    assert result.rows[0]["gene"] == "abc"
    assert result.rows[1]["genetic_code"] == 1
    assert result.rows[2]["status"] == "pseudo"


def test_cds_fasta_non_iupac_names_line(shared_data, tmp_path):
    src = list(read_fasta(shared_data / "cds_fasta" / "ecoli_highly_expressed_genes.fasta"))
    protein = ">p1\nMKLVQE\n"  # a protein FASTA given as cds_fasta
    path = tmp_path / "prot.fa"
    path.write_text(f">{src[0][0]}\n{src[0][1]}\n{protein}")
    with pytest.raises(InputFormatError, match=r"prot\.fa:4:3: character 'L' is not an IUPAC"):
        extract_cds("p", "cds_fasta", path)


# --------------------------------------------------------------------------- bad input


def test_empty_files(tmp_path):
    empty = tmp_path / "e.gb"
    empty.write_bytes(b"")
    for fmt in ("gbff", "cds_fasta"):
        with pytest.raises(InputFormatError, match=r"sample s: source .*e\.gb is empty"):
            extract_cds("s", fmt, empty)
    gz = tmp_path / "e.gb.gz"
    gz.write_bytes(gzip.compress(b"\n"))
    with pytest.raises(InputFormatError, match="holds no data"):
        extract_cds("s", "gbff", gz)


def test_truncated_gzip(shared_data, tmp_path):
    data = (shared_data / "genbank" / "Mgallisepticum.gbff.gz").read_bytes()
    cut = tmp_path / "cut.gbff.gz"
    cut.write_bytes(data[: len(data) // 2])
    msg = r"sample m: .*cut\.gbff\.gz: malformed GenBank file near line \d+: Compressed file"
    with pytest.raises(InputFormatError, match=msg):
        extract_cds("m", "gbff", cut)
    data = (shared_data / YEAST_FA).read_bytes()
    cut = tmp_path / "cut.fa.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFormatError, match=r"sample y: .*cut\.fa\.gz or .* cannot be read"):
        extract_cds("y", "fasta_gff", cut, shared_data / YEAST_GTF, tmpdir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.fa.gz", "cut.gbff.gz"]


def test_malformed_gbff(shared_data, tmp_path):
    text = (shared_data / "genbank" / "NC_005816.gb").read_text()
    truncated = tmp_path / "t.gb"
    truncated.write_text(text[:15000])
    with pytest.raises(
        InputFormatError, match=r"sample s: .*t\.gb: malformed GenBank file near line \d+"
    ):
        extract_cds("s", "gbff", truncated)
    fasta = tmp_path / "fa.gb"
    fasta.write_text((shared_data / "genbank" / "NC_005816.ffn").read_text())
    with pytest.raises(InputFormatError, match=r"no GenBank records found .*'>ref"):
        extract_cds("s", "gbff", fasta)
    corrupt = tmp_path / "c.gb"
    corrupt.write_text(text.replace("        1 tgtaacgaac", "        1 tgtaac!aac"))
    with pytest.raises(InputFormatError, match="'!' at position 7"):
        extract_cds("s", "gbff", corrupt)


def test_bad_arguments(shared_data):
    gb = shared_data / "genbank" / "NC_005816.gb"
    with pytest.raises(SampleSheetError, match="genetic_code 7 is not an NCBI"):
        extract_cds("s", "gbff", gb, genetic_code=7)
    with pytest.raises(SampleSheetError, match="needs the annotation"):
        extract_cds("s", "fasta_gff", gb)
    with pytest.raises(ConfigError, match="unknown reason"):
        DropPolicy(drop=frozenset({"no_such_reason"}))
    with pytest.raises(ConfigError, match="unknown key"):
        DropPolicy.from_config({"dropp": []})
    policy = DropPolicy.from_config({"drop": ["pseudo"], "min_length": 300})
    result = extract_cds("s", "gbff", gb, policy=policy)
    short = [r for r in result.rows if r["length"] < 300]
    assert short
    assert all("too_short" in r["issues"] and r["status"] == "kept" for r in short)


# --------------------------------------------------------------------------- outputs, QC


def test_outputs_summary_and_plot(shared_data, tmp_path):
    tsvs = []
    for name in ("NC_005816.gb", "Mgallisepticum.gbff.gz", "extra_keywords.gb"):
        result = _extract(str(shared_data / "genbank" / name))
        fa, tsv = tmp_path / f"{result.sample}.fa.gz", tmp_path / f"{result.sample}.tsv"
        write_cds_outputs(result, fa, tsv)
        tsvs.append(tsv)
        back = list(read_fasta(fa))
        assert [s for _, s, _ in back] == [r.sequence for r in result.records]
        ids = [h.split(" ", 1)[0] for h, _, _ in back]
        assert len(set(ids)) == len(ids) == result.n_kept
        table = read_cds_tables([tsv])
        assert list(table.columns) == list(TSV_COLUMNS)
        assert len(table) == len(result.rows)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    summary = qc_summary(tsvs).set_index("sample")
    mg = summary.loc["Mgallisepticum"]
    assert (mg["kept"], mg["dropped_pseudo"], mg["n_cds"]) == (719, 25, 744)
    assert summary.loc["extra_keywords", "dropped_remote_join"] == 1
    drop_cols = [c for c in summary.columns if c.startswith("dropped_")]
    assert (summary[drop_cols].sum(axis=1) == summary["dropped"]).all()
    assert summary.loc["NC_005816", "pct_translation_match"] == 100.0
    assert 0.3 < summary.loc["NC_005816", "median_gc"] < 0.6
    png = tmp_path / "qc.png"
    plot_qc(summary.reset_index(), read_cds_tables(tsvs), png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the figure's rule reads the summary back from its TSV: the same table, the same figure
    written = write_qc_summary(tsvs, tmp_path / "qc_summary.tsv")
    back = read_qc_summary(tmp_path / "qc_summary.tsv")
    pd.testing.assert_frame_equal(back, written)
    plot_qc(back, read_cds_tables(tsvs), tmp_path / "qc_back.png")
    assert (tmp_path / "qc_back.png").read_bytes() == png.read_bytes()


def test_cli_subcommands(shared_data, tmp_path):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    fa, tsv = tmp_path / "s.fa.gz", tmp_path / "s.tsv"
    args = parser.parse_args(
        ["cds", "--sample", "s", "--format", "gbff", "--source",
         str(shared_data / "genbank" / "NC_005816.gb"), "--fasta-out", str(fa),
         "--tsv-out", str(tsv)]
    )  # fmt: skip
    assert args.func(args) == 0
    assert len(list(read_fasta(fa))) == 10
    args = parser.parse_args(["cds-qc", str(tsv), "--summary", str(tmp_path / "sum.tsv")])
    assert args.func(args) == 0
    assert (tmp_path / "sum.tsv").read_text().startswith("sample\tn_cds\tkept")


@pytest.mark.parametrize("name", ["ct.gbk.gz", "one_of.gb", "dmel_2Lchunk.gb", "NC_001422.gbk"])
def test_qc_table_is_written_as_pandas_wrote_it(shared_data, name):
    """write_tsv (csv module) writes the bytes pandas' to_csv wrote for the same rows: empty
    cells for missing values, True/False, integers, the shortest float repr, quoting."""
    import io

    result = extract_cds("s", "gbff", shared_data / "genbank" / name)
    result.rows.append(
        {**result.rows[0], "product": 'a "quoted"\tproduct', "note": "line\nbreak", "gc": 1.0}
    )
    want, got = io.StringIO(), io.StringIO()
    result.table().to_csv(want, sep="\t", index=False, na_rep="", lineterminator="\n")
    result.write_tsv(got)
    assert got.getvalue() == want.getvalue()


def test_bulk_codon_translation_matches_biopython():
    """The codon tables of the QC translate every ACGT codon as Biopython does (where the
    code has no codon that is both a stop and an amino acid), mark exactly the stop codons,
    and the codon indices flag every codon that is not all ACGT."""
    import itertools
    import random

    from Bio.Seq import Seq

    from dnalm.genome.cds_record import _code_tables, _codon_indices

    codons = ["".join(c) for c in itertools.product("ACGT", repeat=3)]
    joined = "".join(codons)
    for code in CodonTable.unambiguous_dna_by_id:
        _, stops, letters, translates = _code_tables(code)
        aa = _codon_indices(joined).translate(letters).decode()
        assert {c for c, a in zip(codons, aa, strict=True) if a == "*"} == stops
        if translates:
            assert aa == str(Seq(joined).translate(table=code)), code
    rng = random.Random(0)
    for _ in range(500):
        seq = "".join(rng.choice("ACGTNR") for _ in range(rng.randrange(40)))
        whole = [seq[i : i + 3] for i in range(0, len(seq) - len(seq) % 3, 3)]
        index = _codon_indices(seq)
        assert len(index) == len(whole)
        for value, codon in zip(index, whole, strict=True):
            assert (value < 64) == (set(codon) <= set("ACGT"))
            assert value >= 64 or codons[value] == codon
