"""Acquisition against a real HTTP server on 127.0.0.1 laid out like NCBI and Ensembl
(tests/support/http_server.py), with scripted failures. Nothing here reaches the internet."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import logging
import re
from pathlib import Path

import pytest

from dnalm.core.errors import DownloadError
from dnalm.genome.download import (
    NCBI_FILES,
    acquire,
    classify_source,
    download,
    register,
    resolve_ncbi_assembly,
    verify_file,
)
from dnalm.genome.samples import load_sample_sheet
from tests.support.http_server import LocalHTTPServer, gzip_bytes, md5_hex

FAST = {"retries": 3, "backoff": 0.01, "timeout": 5.0}
GBFF = NCBI_FILES["gbff"]
FASTA = ">ENST0001.1 cds chromosome:GRCh38:1:1:9:1\nATGAAATAA\n>ENST0002.1 cds\nATGCCCTGA\n"


@pytest.fixture
def server(tmp_path):
    with LocalHTTPServer(tmp_path / "www") as srv:
        yield srv


@pytest.fixture
def dest_dir(tmp_path) -> Path:
    return tmp_path / "resources" / "genomes" / "s1"


@pytest.fixture
def gbff_gz(shared_data) -> bytes:
    """A real GenBank record (Yersinia pestis pPCP1), gzipped at test time."""
    return gzip_bytes((shared_data / "genbank" / "NC_005816.gb").read_bytes())


@pytest.fixture
def cds_url(server) -> tuple[str, bytes]:
    data = gzip_bytes(FASTA)
    return server.add_ensembl("Homo_sapiens.GRCh38.cds.all.fa.gz", data), data


def leftovers(folder: Path) -> list[str]:
    """Everything in `folder` (temporary .part files included); [] when absent."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("GCF_000005845.2", "ncbi"),
        ("GCA_000001405.29", "ncbi"),
        ("GCF_000005845", "ncbi"),
        ("https://example.org/a/genome.gbff.gz", "url"),
        ("http://example.org/x.fa", "url"),
        ("ftp://ftp.ensembl.org/pub/x.fa.gz", "url"),
        ("gcf_000005845.2", "local"),
        ("GCF_00005845.2", "local"),
        ("data/genome.gb", "local"),
        ("$DNALM_SHARED_DATA/genbank/NC_005816.gb", "local"),
    ],
)
def test_classify_source(source, kind):
    assert classify_source(source) == kind


# --------------------------------------------------------------------------- success


def test_url_download_verified_with_md5_and_sha256(server, dest_dir, cds_url):
    url, data = cds_url
    path = acquire(
        "s1", url, dest_dir, md5=md5_hex(data), sha256=hashlib.sha256(data).hexdigest(), **FAST
    )
    assert path == dest_dir / "Homo_sapiens.GRCh38.cds.all.fa.gz"
    assert path.read_bytes() == data
    assert gzip.decompress(path.read_bytes()).decode() == FASTA
    assert (
        server.hits("pub/release-113/fasta/homo_sapiens/cds/Homo_sapiens.GRCh38.cds.all.fa.gz") == 1
    )
    assert leftovers(dest_dir) == [path.name]


def test_url_download_to_fixed_destination(server, tmp_path, cds_url):
    """The workflow saves to a fixed name without extension; gzip is still checked (from
    the URL's name and the content)."""
    url, data = cds_url
    dest = tmp_path / "resources" / "genomes" / "s1" / "primary"
    assert download(url, dest, sample="s1", **FAST) == dest
    assert dest.read_bytes() == data


def test_ncbi_accession_uses_published_md5(server, dest_dir, gbff_gz):
    entry = server.add_ncbi_assembly("GCF_000005845.2", "ASM584v2", {GBFF: gbff_gz})
    asm = resolve_ncbi_assembly("GCF_000005845.2", server.ncbi_base_url, **FAST)
    assert asm.accession == "GCF_000005845.2"
    assert asm.name == "GCF_000005845.2_ASM584v2"
    assert asm.folder_url == entry.folder_url
    assert asm.gbff_url == entry.urls[GBFF]
    assert asm.md5 == hashlib.md5(gbff_gz).hexdigest()

    path = acquire("ecoli", "GCF_000005845.2", dest_dir, ncbi_base_url=server.ncbi_base_url, **FAST)
    assert path == dest_dir / "GCF_000005845.2_ASM584v2_genomic.gbff.gz"
    assert path.read_bytes() == gbff_gz
    assert gzip.decompress(path.read_bytes()).startswith(b"LOCUS       NC_005816")
    assert server.hits(entry.paths[GBFF]) == 1
    assert server.hits(f"{entry.folder}/md5checksums.txt") >= 1


def test_versionless_accession_picks_highest_version(server, dest_dir):
    # 10 > 2 numerically (but not as text): the highest version must be compared as a number.
    for version, name in ((1, "ASM584v1"), (2, "ASM584v2"), (10, "ASM584v10")):
        server.add_ncbi_assembly(
            f"GCF_000005845.{version}", name, {GBFF: gzip_bytes(f"LOCUS v{version}\n//\n")}
        )
    asm = resolve_ncbi_assembly("GCF_000005845", server.ncbi_base_url, **FAST)
    assert asm.accession == "GCF_000005845.10"
    assert asm.name == "GCF_000005845.10_ASM584v10"
    path = acquire("ecoli", "GCF_000005845", dest_dir, ncbi_base_url=server.ncbi_base_url, **FAST)
    assert gzip.decompress(path.read_bytes()) == b"LOCUS v10\n//\n"
    # an explicit version is honoured
    assert resolve_ncbi_assembly("GCF_000005845.2", server.ncbi_base_url, **FAST).name == (
        "GCF_000005845.2_ASM584v2"
    )


def test_unknown_version_lists_available(server):
    server.add_ncbi_assembly("GCF_000005845.2", "ASM584v2", {GBFF: gzip_bytes("LOCUS\n")})
    with pytest.raises(DownloadError, match=r"GCF_000005845\.3 not found.*GCF_000005845\.2"):
        resolve_ncbi_assembly("GCF_000005845.3", server.ncbi_base_url, **FAST)


def test_unknown_accession_is_a_clear_error(server):
    server.add_ncbi_assembly("GCF_000005845.2", "ASM584v2", {GBFF: gzip_bytes("LOCUS\n")})
    with pytest.raises(DownloadError) as err:
        acquire(
            "mystery", "GCA_999999999.1", server.root, ncbi_base_url=server.ncbi_base_url, **FAST
        )
    msg = str(err.value)
    assert "mystery" in msg
    assert "404" in msg
    assert "GCA_999999999.1" in msg


def test_assembly_without_gbff(server, dest_dir):
    server.add_ncbi_assembly(
        "GCA_000001405.29", "GRCh38.p14", {"_genomic.fna.gz": gzip_bytes(">chr1\nACGT\n")}
    )
    with pytest.raises(DownloadError, match=r"has no GCA_000001405\.29_GRCh38\.p14_genomic\.gbff"):
        acquire("human", "GCA_000001405.29", dest_dir, ncbi_base_url=server.ncbi_base_url, **FAST)
    # another published file of the same assembly can be chosen
    path = acquire(
        "human",
        "GCA_000001405.29",
        dest_dir,
        ncbi_file="fna",
        ncbi_base_url=server.ncbi_base_url,
        **FAST,
    )
    assert gzip.decompress(path.read_bytes()) == b">chr1\nACGT\n"


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_transient_status_is_retried(server, dest_dir, cds_url, status):
    url, data = cds_url
    key = url.split("/", 3)[3]
    server.fail(key, status=status, times=2)
    path = acquire("s1", url, dest_dir, md5=md5_hex(data), **FAST)
    assert path.read_bytes() == data
    assert server.hits(key) == 3


def test_backoff_doubles(server, dest_dir, cds_url, caplog):
    url, _ = cds_url
    key = url.split("/", 3)[3]
    server.fail(key, status=500, times=3)
    with caplog.at_level(logging.INFO, logger="dnalm.genome"):
        acquire("s1", url, dest_dir, retries=3, backoff=0.01, timeout=5)
    delays = [float(d) for d in re.findall(r"retrying in ([0-9.]+) s", caplog.text)]
    assert delays == [0.01, 0.02, 0.04]
    assert len(re.findall(r"attempt \d/4\)", caplog.text)) == 4  # each attempt is logged


def test_persistent_500_gives_up(server, dest_dir, cds_url):
    url, _ = cds_url
    key = url.split("/", 3)[3]
    server.fail(key, status=500, times=None)
    with pytest.raises(DownloadError) as err:
        acquire("s1", url, dest_dir, **FAST)
    msg = str(err.value)
    assert "s1" in msg
    assert url in msg
    assert "HTTP 500" in msg
    assert "4 attempt" in msg
    assert server.hits(key) == FAST["retries"] + 1
    assert leftovers(dest_dir) == []


@pytest.mark.parametrize("status", [404, 403])
def test_client_errors_are_not_retried(server, dest_dir, status):
    url = server.url("pub/release-113/fasta/homo_sapiens/cds/missing.fa.gz")
    if status == 403:
        server.fail("pub/release-113/fasta/homo_sapiens/cds/missing.fa.gz", status=403, times=None)
    with pytest.raises(DownloadError) as err:
        acquire("s1", url, dest_dir, **FAST)
    msg = str(err.value)
    assert "'s1'" in msg
    assert url in msg
    assert f"HTTP {status}" in msg
    assert ("does not exist" if status == 404 else "refused access") in msg
    assert server.hits("pub/release-113/fasta/homo_sapiens/cds/missing.fa.gz") == 1
    assert leftovers(dest_dir) == []


def test_failed_download_keeps_existing_destination(server, tmp_path):
    dest = tmp_path / "primary"
    dest.write_bytes(b"previous")
    with pytest.raises(DownloadError):
        download(server.url("nothing.gz"), dest, sample="s1", **FAST)
    assert dest.read_bytes() == b"previous"
    assert leftovers(tmp_path) == ["primary", "www"]


def test_truncated_body_is_retried(server, dest_dir, cds_url):
    url, data = cds_url
    key = url.split("/", 3)[3]
    server.truncate(key, times=1)
    path = acquire("s1", url, dest_dir, **FAST)  # no checksum given: length + gzip catch it
    assert path.read_bytes() == data
    assert server.hits(key) == 2


def test_always_truncated_fails_and_leaves_nothing(server, dest_dir, cds_url):
    url, _ = cds_url
    key = url.split("/", 3)[3]
    server.truncate(key, times=None)
    with pytest.raises(DownloadError, match=r"truncated body.*Content-Length said") as err:
        acquire("s1", url, dest_dir, **FAST)
    assert "'s1'" in str(err.value)
    assert server.hits(key) == FAST["retries"] + 1
    assert leftovers(dest_dir) == []


def test_dropped_connection_and_timeout_are_retried(server, dest_dir, cds_url):
    url, data = cds_url
    key = url.split("/", 3)[3]
    server.drop(key, times=1)
    server.delay(key, seconds=1.5, times=1)
    path = acquire("s1", url, dest_dir, retries=3, backoff=0.01, timeout=0.3)
    assert path.read_bytes() == data
    assert server.hits(key) == 3


def test_ncbi_listing_failures_are_retried(server, dest_dir):
    entry = server.add_ncbi_assembly(
        "GCF_000005845.2", "ASM584v2", {GBFF: gzip_bytes("LOCUS x\n//\n")}
    )
    server.fail("genomes/all/GCF/000/005/845/", status=503, times=1)
    server.truncate(f"{entry.folder}/md5checksums.txt", times=1)
    path = acquire("ecoli", "GCF_000005845.2", dest_dir, ncbi_base_url=server.ncbi_base_url, **FAST)
    assert path.name == "GCF_000005845.2_ASM584v2_genomic.gbff.gz"
    assert server.hits("genomes/all/GCF/000/005/845/") == 2
    assert server.hits(f"{entry.folder}/md5checksums.txt") == 2


# --------------------------------------------------------------------------- verification


def test_sheet_md5_mismatch(server, dest_dir, cds_url):
    url, data = cds_url
    key = url.split("/", 3)[3]
    wrong = "0" * 32
    with pytest.raises(DownloadError) as err:
        acquire("s1", url, dest_dir, md5=wrong, **FAST)
    msg = str(err.value)
    assert f"expected {wrong}, got {md5_hex(data)}" in msg
    assert "'s1'" in msg
    assert url in msg
    assert server.hits(key) == FAST["retries"] + 1  # retried a bounded number of times
    assert leftovers(dest_dir) == []


def test_sheet_sha256_mismatch(server, dest_dir, cds_url):
    url, data = cds_url
    with pytest.raises(DownloadError) as err:
        acquire("s1", url, dest_dir, sha256="ab" * 32, retries=0, backoff=0.01)
    assert f"expected {'ab' * 32}, got {hashlib.sha256(data).hexdigest()}" in str(err.value)
    assert leftovers(dest_dir) == []


def test_wrong_content_then_right_content(server, dest_dir, cds_url):
    url, data = cds_url
    key = url.split("/", 3)[3]
    server.wrong_content(key, gzip_bytes(">other\nAAAA\n"), times=1)
    path = acquire("s1", url, dest_dir, md5=md5_hex(data), **FAST)
    assert path.read_bytes() == data
    assert server.hits(key) == 2


def test_ncbi_md5_mismatch(server, dest_dir, gbff_gz):
    entry = server.add_ncbi_assembly("GCF_000005845.2", "ASM584v2", {GBFF: gbff_gz})
    other = gzip_bytes(b"LOCUS       NOT_THE_ONE\n//\n")
    server.wrong_content(entry.paths[GBFF], other, times=None)
    with pytest.raises(DownloadError) as err:
        acquire("ecoli", "GCF_000005845.2", dest_dir, ncbi_base_url=server.ncbi_base_url, **FAST)
    msg = str(err.value)
    assert f"expected {md5_hex(gbff_gz)}, got {md5_hex(other)}" in msg
    assert entry.urls[GBFF] in msg
    assert "'ecoli'" in msg
    assert leftovers(dest_dir) == []


def test_ncbi_fasta_sample_takes_genomic_fna(server, tmp_path, dest_dir, gbff_gz, shared_data):
    """A sheet row with format fasta and an accession takes {assembly}_genomic.fna.gz (not
    the GBFF beside it), checked against md5checksums.txt like the GBFF."""
    fna_gz = gzip_bytes((shared_data / "genbank" / "NC_005816.fna").read_bytes())
    fna = NCBI_FILES["fna"]
    entry = server.add_ncbi_assembly("GCF_000009065.1", "ASM906v1", {GBFF: gbff_gz, fna: fna_gz})
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(
        "sample\tspecies\tsource\tformat\tannotate\tannotate_mode\n"
        "ypestis\tYersinia pestis\tGCF_000009065\tfasta\tpyrodigal\tmeta\n"
    )
    (row,) = load_sample_sheet(sheet)
    assert row.ncbi_file == "fna"

    def fetch():
        return acquire(
            row.sample,
            row.source,
            dest_dir,
            filename="primary",
            ncbi_file=row.ncbi_file,
            ncbi_base_url=server.ncbi_base_url,
            **FAST,
        )

    path = fetch()
    assert path.read_bytes() == fna_gz
    assert gzip.decompress(path.read_bytes()).startswith(b">gi|45478711|ref|NC_005816.1|")
    assert server.hits(entry.paths[fna]) == 1
    assert server.hits(entry.paths[GBFF]) == 0
    path.unlink()
    # a body that does not match NCBI's published md5 is retried, then refused
    other = gzip_bytes(b">NOT_THE_ONE\nACGT\n")
    server.wrong_content(entry.paths[fna], other, times=None)
    with pytest.raises(DownloadError) as err:
        fetch()
    msg = str(err.value)
    assert f"expected {md5_hex(fna_gz)}, got {md5_hex(other)}" in msg
    assert entry.urls[fna] in msg
    assert "'ypestis'" in msg
    assert leftovers(dest_dir) == []


def test_sheet_md5_disagreeing_with_ncbi_fails_before_download(server, dest_dir, gbff_gz):
    entry = server.add_ncbi_assembly("GCF_000005845.2", "ASM584v2", {GBFF: gbff_gz})
    with pytest.raises(DownloadError, match="differs from NCBI's published md5"):
        acquire(
            "ecoli",
            "GCF_000005845.2",
            dest_dir,
            md5="1" * 32,
            ncbi_base_url=server.ncbi_base_url,
            **FAST,
        )
    assert server.hits(entry.paths[GBFF]) == 0
    # agreeing md5 and a sheet sha256 are both checked
    path = acquire(
        "ecoli",
        "GCF_000005845.2",
        dest_dir,
        md5=md5_hex(gbff_gz).upper(),
        sha256=hashlib.sha256(gbff_gz).hexdigest(),
        ncbi_base_url=server.ncbi_base_url,
        **FAST,
    )
    assert path.read_bytes() == gbff_gz


def test_corrupt_gzip_without_checksum(server, dest_dir):
    good = gzip_bytes(FASTA * 50)
    corrupt = good[:-30] + bytes(b ^ 0xFF for b in good[-30:-8]) + good[-8:]
    url = server.add_file("pub/data/cds.fa.gz", corrupt)
    with pytest.raises(DownloadError, match="not a valid gzip file") as err:
        acquire("s1", url, dest_dir, **FAST)
    assert url in str(err.value)
    assert leftovers(dest_dir) == []


def test_html_page_instead_of_gzip(server, dest_dir):
    """A .gz address answering 200 with a web page (a proxy or portal) is caught."""
    url = server.add_file("pub/data/genome.gbff.gz", b"<html><body>Sign in</body></html>")
    with pytest.raises(DownloadError, match="answered with an HTML page"):
        acquire("s1", url, dest_dir, retries=0, backoff=0.01)
    assert leftovers(dest_dir) == []


def test_malformed_expected_checksum(server, dest_dir, cds_url):
    url, _ = cds_url
    with pytest.raises(DownloadError, match="md5 'xyz' is not 32 hexadecimal"):
        acquire("s1", url, dest_dir, md5="xyz", **FAST)


# --------------------------------------------------------------------------- local files


def test_local_path_used_in_place(tmp_path, dest_dir):
    data = gzip_bytes(FASTA)
    original = tmp_path / "mine" / "cds.fa.gz"
    original.parent.mkdir()
    original.write_bytes(data)
    path = acquire(
        "s1", str(original), dest_dir, md5=md5_hex(data), sha256=hashlib.sha256(data).hexdigest()
    )
    assert path == original
    assert not dest_dir.exists()  # nothing copied


def test_local_path_with_env_var_and_relative(tmp_path, monkeypatch, dest_dir):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "g.gb").write_text("LOCUS x\n//\n")
    monkeypatch.setenv("DNALM_TEST_DATA", str(tmp_path / "data"))
    assert acquire("s1", "$DNALM_TEST_DATA/g.gb", dest_dir) == tmp_path / "data" / "g.gb"
    monkeypatch.chdir(tmp_path)
    assert acquire("s1", "data/g.gb", dest_dir) == tmp_path / "data" / "g.gb"
    monkeypatch.delenv("DNALM_TEST_DATA")
    with pytest.raises(DownloadError, match=r"DNALM_TEST_DATA.*not set"):
        acquire("s1", "${DNALM_TEST_DATA}/g.gb", dest_dir)


def test_file_url_is_a_local_path(tmp_path, dest_dir):
    """file:///abs/path (and file://localhost/..., percent escapes decoded) is the local
    file, used in place, not a relative path named "file:"."""
    original = tmp_path / "my data" / "g.gb"
    original.parent.mkdir()
    original.write_text("LOCUS x\n//\n")
    url = original.as_uri()  # file:///.../my%20data/g.gb
    assert "%20" in url
    assert acquire("s1", url, dest_dir) == original
    assert acquire("s1", "file://localhost" + url[len("file://") :], dest_dir) == original
    assert not dest_dir.exists()


def test_local_shared_data_gbff(shared_data, dest_dir):
    original = shared_data / "genbank" / "phage_T4_test.gbff.gz"
    assert acquire("t4", str(original), dest_dir) == original
    digests = verify_file(original, sample="t4")
    assert digests.md5 == hashlib.md5(original.read_bytes()).hexdigest()
    assert digests.size == original.stat().st_size


def test_missing_local_path_names_sample(tmp_path, dest_dir):
    missing = tmp_path / "nope" / "genome.gbff.gz"
    with pytest.raises(DownloadError) as err:
        acquire("yeast_1", str(missing), dest_dir)
    msg = str(err.value)
    assert "'yeast_1'" in msg
    assert str(missing) in msg
    assert "not found" in msg


def test_local_checksum_mismatch(tmp_path):
    local = tmp_path / "g.fa"
    local.write_text(FASTA)
    with pytest.raises(DownloadError) as err:
        acquire("s1", str(local), tmp_path / "dl", md5="f" * 32)
    msg = str(err.value)
    assert f"expected {'f' * 32}, got {md5_hex(FASTA.encode())}" in msg
    assert str(local) in msg
    assert local.read_text() == FASTA  # a local source is never touched


def test_local_corrupt_gzip(tmp_path):
    local = tmp_path / "g.fa.gz"
    local.write_bytes(gzip_bytes(FASTA * 20)[:-12])  # cut: no trailer
    with pytest.raises(DownloadError, match=r"'s1'.*not a valid gzip file"):
        acquire("s1", str(local), tmp_path / "dl")


# --------------------------------------------------------------------------- CLI


def test_fetch_subcommand_prints_path(server, tmp_path, capsys, cds_url):
    url, data = cds_url
    parser = argparse.ArgumentParser(prog="dnalm")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "fetch",
            "--sample",
            "s1",
            "--source",
            url,
            "--dest-dir",
            str(tmp_path / "out"),
            "--md5",
            md5_hex(data),
            "--backoff",
            "0.01",
        ]
    )
    assert args.func(args) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == tmp_path / "out" / "Homo_sapiens.GRCh38.cds.all.fa.gz"
    assert printed.read_bytes() == data


def test_server_index_pages_look_like_ncbi(server):
    """The stand-in's folder listing has the parent link and one link per version folder,
    as NCBI's Apache index does (guards the parser's test against a too-friendly server)."""
    import urllib.request

    server.add_ncbi_assembly("GCF_000005845.2", "ASM584v2", {GBFF: gzip_bytes("LOCUS\n")})
    with urllib.request.urlopen(server.url("genomes/all/GCF/000/005/845/")) as r:
        page = r.read().decode()
    assert "Index of /genomes/all/GCF/000/005/845/" in page
    assert '<a href="/genomes/all/GCF/000/005/">Parent Directory</a>' in page
    assert '<a href="GCF_000005845.2_ASM584v2/">GCF_000005845.2_ASM584v2/</a>' in page


# --------------------------------------------------------------------------- task files


def test_task_file_from_a_url_is_fetched_checked_and_refused_on_mismatch(server, tmp_path):
    """A task file given as URL#sha256=...: fetched with retries (an HTTP 500 first) to its
    resources/task_files path; a checksum that does not match is refused after the retries,
    naming the config key and the fix, and nothing is left behind."""
    from dnalm.genome import taskfiles

    data = (Path(__file__).parent / "data/tasks/tf_binding/chr22_scores.txt.gz").read_bytes()
    url = server.add_file("course/data/chr22_scores.txt.gz", data)
    server.fail("course/data/chr22_scores.txt.gz", status=500, times=1)
    cfg = {"retries": 2, "backoff_seconds": 0.01, "timeout_seconds": 5.0}
    good = taskfiles.parse(f"{url}#sha256={hashlib.sha256(data).hexdigest()}", "tasks.x.scores")
    dest = tmp_path / good.path
    taskfiles.fetch(good, str(dest), cfg)
    assert dest.read_bytes() == data
    assert server.hits("course/data/chr22_scores.txt.gz") == 2

    bad = taskfiles.parse(f"{url}#md5={'0' * 32}", "tasks.tf_binding.scores")
    assert bad.path == good.path  # one URL, one file (the fragment is not part of it)
    dest = tmp_path / "again" / bad.path
    with pytest.raises(DownloadError) as err:
        taskfiles.fetch(bad, str(dest), cfg)
    message = str(err.value)
    assert "config key tasks.tf_binding.scores" in message
    assert "md5" in message
    assert "0" * 32 in message
    assert "#sha256= or #md5=" in message
    assert server.hits("course/data/chr22_scores.txt.gz") == 2 + 3  # 1 + retries attempts
    assert not dest.exists()
    assert not list((tmp_path / "again").rglob("*.*"))
