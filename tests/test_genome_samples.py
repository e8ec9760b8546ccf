"""The sample sheet: valid sheets load; each kind of bad row stops with a message naming the
sheet, the line and the fix."""

from __future__ import annotations

import re

import pytest
from Bio.Data import CodonTable

from dnalm.core.errors import SampleSheetError
from dnalm.genome.samples import GENETIC_CODES, classify_source, load_sample_sheet

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
    assert len(shared) == 14
    assert {s.format for s in shared} == {"gbff", "fasta_gff", "cds_fasta"}


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
        r":2: sample a: an NCBI accession always yields a GBFF",
    ),
    ("fields", HEADER + "\na\tS\t{f}\n", r":2: 3 fields but the header has 4"),
    ("empty", "", r"the sample sheet is empty"),
    ("header only", HEADER + "\n", r"has a header but no rows"),
    ("csv", "sample,species,source,format\na,S,x,gbff\n", r":1: .*must be tab-separated"),
    ("empty species", HEADER + "\na\t\t{f}\tgbff\n", r":2: column species"),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_sheets(tmp_path, local_file, case, text, message):
    sheet = write(tmp_path, text.format(f=local_file))
    with pytest.raises(SampleSheetError, match=message) as info:
        load_sample_sheet(sheet)
    assert str(sheet) in str(info.value) or case == "missing sheet"


def test_missing_sheet(tmp_path):
    with pytest.raises(SampleSheetError, match=re.escape("--config samples=")):
        load_sample_sheet(tmp_path / "nope.tsv")
