"""The sample sheet: valid sheets load; each kind of bad row stops with a message naming the
sheet, the line and the fix."""

from __future__ import annotations

import re

import pytest
from Bio.Data import CodonTable

from dnalm.core.errors import SampleSheetError
from dnalm.genome.samples import (
    GENETIC_CODES,
    classify_source,
    expand_local,
    load_sample_sheet,
)

HEADER = "sample\tspecies\tsource\tformat"


def write(tmp_path, text: str):
    p = tmp_path / "samples.tsv"
    p.write_text(text)
    return p


@pytest.fixture
def local_file(tmp_path):
    f = tmp_path / "genome.gbff"
    f.write_text("LOCUS x\n")
    return f


def test_shipped_sheets_load(repo_root, shared_data, monkeypatch):
    monkeypatch.chdir(repo_root)
    default = load_sample_sheet(repo_root / "config/samples.tsv")
    assert [s.sample for s in default] == ["human", "mouse", "fly", "ecoli", "yeast", "arabidopsis"]
    assert all(s.source_kind == "url" and s.format == "cds_fasta" for s in default)
    assert all("release-113" in s.source or "release-60" in s.source for s in default)
    shared = load_sample_sheet(repo_root / "tests/config/samples.tsv")
    assert len(shared) == 16
    assert {s.format for s in shared} == {"gbff", "fasta_gff", "cds_fasta", "fasta"}
    fna = {s.sample: s for s in shared}["ypestis_fna"]
    assert (fna.annotate, fna.annotate_mode, fna.has_cds, fna.has_genome) == (
        "pyrodigal",
        "meta",
        True,
        True,
    )


def test_defaults_and_types(tmp_path, local_file):
    sheet = write(
        tmp_path,
        "# comment line\n"
        + HEADER
        + "\tgenetic_code\tpretrain\n"
        + f"a1\tSp one\t{local_file}\tgbff\t4\tno\n"
        + "\n"
        + "b.2\tSp two\tGCF_000005845.2\tgbff\t\t\n",
    )
    a, b = load_sample_sheet(sheet)
    assert (a.genetic_code, a.pretrain, a.species_task, a.line) == (4, False, True, 3)
    assert (b.genetic_code, b.pretrain, b.source_kind, b.line) == (None, True, "ncbi", 5)


def test_genome_fasta_rows(tmp_path, local_file):
    """format fasta: gene calling optional (single by default); without it no CDS, so
    species_task must be false; NCBI accessions take the genome FASTA."""
    sheet = write(
        tmp_path,
        HEADER
        + "\tannotate\tannotate_mode\tspecies_task\tgenetic_code\n"
        + f"called\tS\t{local_file}\tfasta\tpyrodigal\t\t\t4\n"
        + f"bare\tS\t{local_file}\tfasta\t\t\tfalse\t\n"
        + "ncbi\tS\tGCF_000005845.2\tfasta\tpyrodigal\tmeta\t\t\n"
        + f"recalled\tS\t{local_file}\tgbff\tpyrodigal\tsingle\t\t\n"
        + f"cds\tS\t{local_file}\tcds_fasta\t\t\t\t\n",
    )
    rows = {s.sample: s for s in load_sample_sheet(sheet)}
    assert rows["called"].annotate_mode == "single"
    assert rows["called"].genetic_code == 4
    assert rows["called"].has_cds
    assert rows["called"].has_genome
    assert not rows["bare"].has_cds
    assert rows["bare"].has_genome
    assert rows["bare"].pretrain
    assert not rows["bare"].species_task
    assert rows["ncbi"].ncbi_file == "fna"
    assert rows["ncbi"].annotate_mode == "meta"
    assert rows["recalled"].ncbi_file == "gbff"
    assert rows["recalled"].has_cds
    assert rows["cds"].has_cds
    assert not rows["cds"].has_genome


def test_classify_source():
    assert classify_source("GCA_000001405.29") == "ncbi"
    assert classify_source("GCF_000005845") == "ncbi"
    assert classify_source("https://x.org/a.fa.gz") == "url"
    assert classify_source("ftp://x.org/a.fa.gz") == "url"
    assert classify_source("data/GCF_000005845.2.gbff") == "local"


def test_genetic_codes_match_biopython():
    assert set(CodonTable.unambiguous_dna_by_id) == set(GENETIC_CODES)


def test_env_vars_expand_in_local_paths(tmp_path, local_file, monkeypatch):
    monkeypatch.setenv("DNALM_TEST_DIR", str(local_file.parent))
    sheet = write(tmp_path, HEADER + "\nx\tS\t$DNALM_TEST_DIR/genome.gbff\tgbff\n")
    assert load_sample_sheet(sheet)[0].sample == "x"


BAD = [
    (
        "duplicate",
        HEADER + "\na\tS\t{f}\tgbff\na\tS\t{f}\tgbff\n",
        r"samples.tsv:3: duplicate sample ID 'a' \(first used on line 2\)",
    ),
    (
        "path-like",
        HEADER + "\n../evil\tS\t{f}\tgbff\n",
        r":2: sample ID '../evil' is invalid \(path-like",
    ),
    ("slash", HEADER + "\na/b\tS\t{f}\tgbff\n", r":2: sample ID 'a/b' is invalid \(path-like"),
    ("format", HEADER + "\na\tS\t{f}\tembl\n", r":2: unknown format 'embl'; use one of gbff"),
    (
        "missing file",
        HEADER + "\na\tS\t/nonexistent/x.gb\tgbff\n",
        r":2: sample a: local source file /nonexistent/x.gb not found",
    ),
    (
        "missing column",
        "sample\tspecies\tsource\na\tS\t{f}\n",
        r":1: missing required column\(s\) format",
    ),
    (
        "unknown column",
        HEADER + "\tcolour\na\tS\t{f}\tgbff\tred\n",
        r":1: unknown column\(s\) colour; allowed columns",
    ),
    (
        "genetic code",
        HEADER + "\tgenetic_code\na\tS\t{f}\tgbff\t7\n",
        r":2: sample a: genetic_code 7 is not an NCBI translation table",
    ),
    (
        "genetic code text",
        HEADER + "\tgenetic_code\na\tS\t{f}\tgbff\tbacterial\n",
        r":2: genetic_code 'bacterial' is not an integer",
    ),
    (
        "no annotation",
        HEADER + "\na\tS\t{f}\tfasta_gff\n",
        r":2: sample a has format fasta_gff but no annotation",
    ),
    (
        "stray annotation",
        HEADER + "\tannotation\na\tS\t{f}\tgbff\t{f}\n",
        r":2: sample a has an annotation but format gbff",
    ),
    (
        "md5",
        HEADER + "\tmd5\na\tS\t{f}\tgbff\txyz\n",
        r":2: md5 'xyz' is not 32 hexadecimal characters",
    ),
    (
        "bool",
        HEADER + "\tpretrain\na\tS\t{f}\tgbff\tmaybe\n",
        r":2: column pretrain is 'maybe'; use true or false",
    ),
    (
        "ncbi format",
        HEADER + "\na\tS\tGCF_000005845.2\tcds_fasta\n",
        r":2: sample a: an NCBI accession yields a GBFF \(format gbff\) or a genome FASTA",
    ),
    (
        "annotate value",
        HEADER + "\tannotate\na\tS\t{f}\tfasta\tprodigal\n",
        r":2: column annotate is 'prodigal'; use one of pyrodigal or leave it empty",
    ),
    (
        "annotate_mode value",
        HEADER + "\tannotate\tannotate_mode\na\tS\t{f}\tfasta\tpyrodigal\tmetagenome\n",
        r":2: column annotate_mode is 'metagenome'; use one of single, meta",
    ),
    (
        "annotate cds_fasta",
        HEADER + "\tannotate\na\tS\t{f}\tcds_fasta\tpyrodigal\n",
        r":2: sample a: annotate pyrodigal needs a genome sequence, but format cds_fasta",
    ),
    (
        "annotate_mode alone",
        HEADER + "\tannotate_mode\na\tS\t{f}\tfasta\tmeta\n",
        r":2: sample a: annotate_mode meta without annotate",
    ),
    (
        "fasta species task",
        HEADER + "\na\tS\t{f}\tfasta\n",
        r":2: sample a has format fasta and no annotate: no CDS; set annotate: pyrodigal "
        r"\(gene calling\) or species_task: false",
    ),
    ("fields", HEADER + "\na\tS\t{f}\n", r":2: 3 fields but the header has 4"),
    ("empty", "", r"the sample sheet is empty"),
    ("header only", HEADER + "\n", r"has a header but no rows"),
    ("csv", "sample,species,source,format\na,S,x,gbff\n", r":1: .*must be tab-separated"),
    ("empty species", HEADER + "\na\t\t{f}\tgbff\n", r":2: column species"),
    (
        "unmatched quote",
        HEADER + '\na\tS\t{f}\tgbff\nb\t"E. coli K-12\t{f}\tgbff\nc\tS\t{f}\tgbff\n',
        r":3: column species \(character 3\) opens a double quote that is not closed: "
        r"'\"E\. coli K-12'; remove the quote, or close it",
    ),
    (
        "case collision",
        HEADER + "\nphix\tS\t{f}\tgbff\nPHIX\tS\t{f}\tgbff\n",
        r":3: sample ID 'PHIX' differs only in case from 'phix' \(line 2\); .*case-insensitive "
        r"file systems",
    ),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_sheets(tmp_path, local_file, case, text, message):
    sheet = write(tmp_path, text.format(f=local_file))
    with pytest.raises(SampleSheetError, match=message) as info:
        load_sample_sheet(sheet)
    assert str(sheet) in str(info.value) or case == "missing sheet"


def test_quoted_cells_still_read(tmp_path, local_file):
    """A quoted cell that closes its quote is read as before (quotes removed)."""
    sheet = write(tmp_path, HEADER + f'\na\t"E. coli ""K-12"""\t{local_file}\tgbff\n')
    (sample,) = load_sample_sheet(sheet)
    assert sample.species == 'E. coli "K-12"'


def test_file_url_sources(tmp_path, local_file):
    """A file:// URL is an absolute local path wherever a path is accepted; a relative or
    remote-host one is refused with the form to write."""
    sheet = write(tmp_path, HEADER + f"\na\tS\t{local_file.as_uri()}\tgbff\n")
    (sample,) = load_sample_sheet(sheet)
    assert sample.source_kind == "local"
    assert expand_local(sample.source) == local_file
    missing = (tmp_path / "nope.gb").as_uri()
    with pytest.raises(
        SampleSheetError, match=r":2: sample a: local source file file://.*not found"
    ):
        load_sample_sheet(write(tmp_path, HEADER + f"\na\tS\t{missing}\tgbff\n"))
    for bad in ("file://genome.gbff", "file://server/data/g.gb"):
        with pytest.raises(
            SampleSheetError, match=r":2: sample a: source .* absolute path \(file:///data"
        ):
            load_sample_sheet(write(tmp_path, HEADER + f"\na\tS\t{bad}\tgbff\n"))


def test_missing_sheet(tmp_path):
    with pytest.raises(SampleSheetError, match=re.escape("--config samples=")):
        load_sample_sheet(tmp_path / "nope.tsv")
