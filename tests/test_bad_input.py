"""Bad input, reruns and shared clusters: each kind of bad input stops with one message that
names the culprit (sheet and line, sample, file, config key) and the fix, and leaves no
output or trusted cache file behind."""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml

from dnalm.core.config import check_config_names
from dnalm.core.errors import ConfigError, DownloadError, InputFormatError, SampleSheetError
from dnalm.core.io import atomic_path, atomic_write
from dnalm.genome.cds import run_cds
from dnalm.genome.download import acquire, download, resolve_local, verify_file
from dnalm.genome.gff import read_cds_models
from dnalm.genome.qc import qc_summary
from dnalm.genome.samples import load_sample_sheet
from tests.support.http_server import LocalHTTPServer
from tests.support.workflow_runner import REPO, make_workdir, snakemake

HEADER = "sample\tspecies\tsource\tformat"
SCRIPTS = REPO / "workflow" / "scripts"


def sheet_with(tmp_path: Path, *rows: str, name: str = "samples.tsv") -> Path:
    sheet = tmp_path / name
    sheet.write_text(HEADER + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return sheet


def files_under(folder: Path) -> list[str]:
    """Every file and folder under `folder`, hidden ones included; [] when absent."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def server(tmp_path):
    with LocalHTTPServer(tmp_path / "www") as srv:
        yield srv


@pytest.fixture(scope="module")
def mgal_cds_fasta(tmp_path_factory, shared_data) -> Path:
    """M. gallisepticum (genetic code 4) as a CDS FASTA without [transl_table=...] tags: the
    719 non-pseudo CDS of the shared GBFF."""
    from Bio import SeqIO

    out = tmp_path_factory.mktemp("mgal") / "mgal.cds.fa"
    with gzip.open(shared_data / "genbank/Mgallisepticum.gbff.gz", "rt") as fh, open(out, "w") as o:
        for record in SeqIO.parse(fh, "genbank"):
            for f in record.features:
                if f.type == "CDS" and "pseudo" not in f.qualifiers:
                    tag = f.qualifiers.get("locus_tag", ["cds"])[0]
                    o.write(f">{tag}\n{f.extract(record.seq)}\n")
    return out


# --------------------------------------------------------------------------- 2: config names


NAMED_KEYS = {
    "tokenizers": {"tokenizers": {"../../../ESCAPED_tok": {"type": "nucleotide"}}},
    "tasks.sequence_tasks": {
        "tasks": {"sequence_tasks": {"../../../ESCAPED_task": {"table": "t.tsv"}}}
    },
    "pretrain.models": {
        "pretrain": {
            "models": {"../ESCAPED_m": {"objective": "gpt", "tokenizer": "x", "preset": "tiny"}}
        }
    },
    "finetune.runs": {"finetune": {"runs": {"a/ESCAPED_run": {"model": "m"}}}},
    "probe.external": {"probe": {"external": {"../ESCAPED_ext": {"model": "m"}}}},
    "models.external": {"models": {"external": {"a/ESCAPED_hub": {"source": "org/m"}}}},
}


@pytest.mark.parametrize("key", list(NAMED_KEYS))
def test_path_like_config_names_are_refused(key):
    """Every config key whose names become path components rejects '../x' and 'a/b', in
    the schema itself and with a message naming the key."""
    config = NAMED_KEYS[key]
    name = next(iter(eval_path(config, key)))
    with pytest.raises(ConfigError, match=re.escape(f"config key {key}: the name {name!r}")):
        check_config_names(config)
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors({"samples": "x", **config}))
    assert any(e.instance == name for e in errors), [e.message for e in errors]


def eval_path(config: dict, dotted: str) -> dict:
    for key in dotted.split("."):
        config = config[key]
    return config


def test_reserved_run_name_is_named():
    with pytest.raises(ConfigError, match=r"finetune\.runs: the name 'onehot_cnn' is reserved"):
        check_config_names({"finetune": {"runs": {"onehot_cnn": {"model": "m"}}}})


def test_escaping_task_name_stops_dry_run_before_any_job(tmp_path):
    workdir = make_workdir(
        tmp_path / "wd",
        {"tasks": {"sequence_tasks": {"../../../ESCAPED_task": {"table": "t.tsv"}}}},
        keep=["phiX174"],
    )
    proc = snakemake(workdir, "-n", timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key tasks.sequence_tasks: the name '../../../ESCAPED_task' is not allowed" in out
    assert not (workdir / "results").exists()
    assert not [p for p in tmp_path.rglob("*") if "ESCAPED" in p.name]


# --------------------------------------------------------------------------- 3: drop share


def test_default_code_dropping_most_cds_warns_in_log_and_summary(tmp_path, mgal_cds_fasta, caplog):
    out = tmp_path / "results/cds"
    with caplog.at_level(logging.WARNING, logger="dnalm"):
        result = run_cds("mgal", "cds_fasta", mgal_cds_fasta, out / "mgal.fa.gz", out / "mgal.tsv")
    assert result.status_counts()["internal_stop"] == 542
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    expected = "sample mgal: 542 of 719 CDS (75%) dropped as internal_stop; likely fix: set "
    assert any(w.startswith(expected) and "genetic_code" in w for w in warnings), warnings
    summary = qc_summary([out / "mgal.tsv"]).set_index("sample")
    flag = summary.loc["mgal", "drop_warning"]
    assert flag.startswith("542 of 719 CDS (75%) dropped as internal_stop; likely fix: set ")
    assert "genetic_code" in flag

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dnalm"):
        run_cds(
            "mgal", "cds_fasta", mgal_cds_fasta, out / "m4.fa.gz", out / "m4.tsv", genetic_code=4
        )
    assert not [r for r in caplog.records if "dropped as" in r.getMessage()]
    assert not qc_summary([out / "m4.tsv"]).loc[0, "drop_warning"]


def test_max_drop_fraction_fails_the_sample_with_no_outputs(tmp_path, mgal_cds_fasta):
    out = tmp_path / "results/cds"
    with pytest.raises(InputFormatError) as err:
        run_cds(
            "mgal",
            "cds_fasta",
            mgal_cds_fasta,
            out / "mgal.fa.gz",
            out / "mgal.tsv",
            max_drop_fraction=0.5,
        )
    msg = str(err.value)
    assert msg.startswith(f"sample mgal: 542 of 719 CDS (75%) in {mgal_cds_fasta} were dropped")
    assert "(internal_stop 542), more than cds.max_drop_fraction 0.5" in msg
    assert "likely fix: set genetic_code in the sample sheet" in msg
    assert files_under(out) == []


@pytest.mark.slow
def test_drop_share_through_the_workflow(tmp_path, mgal_cds_fasta):
    """extract_cds reads cds.max_drop_fraction from the config: unset, the sample passes with
    the WARNING in its log and the flag in the summary; 0.5, it stops with no outputs."""
    sheet = sheet_with(tmp_path, f"mgal\tM. gallisepticum\t{mgal_cds_fasta}\tcds_fasta")
    workdir = make_workdir(tmp_path / "wd", sheet=sheet)
    proc = snakemake(workdir, "results/cds/qc_summary.tsv", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (workdir / "results/logs/cds/mgal.log").read_text()
    assert (
        "WARNING dnalm.genome.cds: sample mgal: 542 of 719 CDS (75%) dropped as internal_stop"
        in log
    )
    summary = pd.read_csv(workdir / "results/cds/qc_summary.tsv", sep="\t")
    assert summary.loc[0, "drop_warning"].startswith("542 of 719 CDS (75%) dropped as internal")

    workdir = make_workdir(tmp_path / "wd2", {"cds": {"max_drop_fraction": 0.5}}, sheet=sheet)
    proc = snakemake(workdir, "results/cds/mgal.tsv", timeout=600)
    assert proc.returncode != 0
    log = (workdir / "results/logs/cds/mgal.log").read_text()
    assert "ERROR dnalm: sample mgal: 542 of 719 CDS (75%)" in log
    assert "more than cds.max_drop_fraction 0.5; likely fix: set genetic_code" in log
    assert files_under(workdir / "results/cds") == []


def test_max_drop_fraction_is_in_the_schema_and_readme():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for ok in (None, 0, 0.2, 1):
        assert not list(validator.iter_errors({"samples": "x", "cds": {"max_drop_fraction": ok}}))
    assert list(validator.iter_errors({"samples": "x", "cds": {"max_drop_fraction": 1.5}}))
    assert "`max_drop_fraction`" in (REPO / "config/README.md").read_text()
    assert "max_drop_fraction: null" in (REPO / "config/config.yaml").read_text()


# --------------------------------------------------------------------------- 5: file modes


@pytest.fixture
def umask():
    """Set the process umask for one test (restored afterwards)."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_atomic_writes_get_the_umask_mode(tmp_path, umask, mask, mode):
    umask(mask)
    with atomic_write(tmp_path / "a.tsv") as fh:
        fh.write("x\n")
    with atomic_write(tmp_path / "a.fa.gz") as fh:
        fh.write(">x\nACGT\n")
    with atomic_path(tmp_path / "a.png", suffix=".png") as tmp:
        tmp.write_bytes(b"png")
    for name in ("a.tsv", "a.fa.gz", "a.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_tokenizer_folder_gets_the_umask_mode(tmp_path, umask):
    from dnalm.tokenization.build import build_tokenizer

    umask(0o022)
    out = build_tokenizer({"type": "nucleotide"}).save(tmp_path / "nucleotide")
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in out.iterdir())


# --------------------------------------------------------------------------- 7: reserved IDs


@pytest.mark.parametrize("sid", ["qc_summary", "QC_Summary", "qc", "gather", "summary.tsv"])
def test_reserved_sample_ids_are_refused(tmp_path, sid):
    src = tmp_path / "g.gbff"
    src.write_text("LOCUS x\n")
    sheet = sheet_with(tmp_path, f"ok\tS\t{src}\tgbff", f"{sid}\tS\t{src}\tgbff")
    with pytest.raises(SampleSheetError) as err:
        load_sample_sheet(sheet)
    msg = str(err.value)
    assert msg.startswith(f"{sheet}:3: sample ID {sid!r} is reserved")
    assert (
        "qc_summary, qc, qc_figure, gather, assignment.tsv, summary.tsv; rename the sample" in msg
    )


# --------------------------------------------------------------------------- 8: BOM


def test_sheet_with_byte_order_mark_loads(tmp_path):
    src = tmp_path / "g.gbff"
    src.write_text("LOCUS x\n")
    sheet = tmp_path / "samples.tsv"
    sheet.write_bytes(b"\xef\xbb\xbf" + f"{HEADER}\na\tS\t{src}\tgbff\n".encode())
    assert [s.sample for s in load_sample_sheet(sheet)] == ["a"]


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_inputs_with_byte_order_mark_are_read(tmp_path, shared_data, packed):
    bom = b"\xef\xbb\xbf"
    cds = bom + (shared_data / "cds_fasta/ecoli_highly_expressed_genes.fasta").read_bytes()
    gbff = bom + (shared_data / "genbank/NC_005816.gb").read_bytes()
    pack = gzip.compress if packed else bytes
    (tmp_path / "cds.fa").write_bytes(pack(cds))
    (tmp_path / "g.gb").write_bytes(pack(gbff))
    out = tmp_path / "out"
    assert (
        run_cds("e", "cds_fasta", tmp_path / "cds.fa", out / "e.fa.gz", out / "e.tsv").n_kept == 94
    )
    assert run_cds("y", "gbff", tmp_path / "g.gb", out / "y.fa.gz", out / "y.tsv").n_kept == 10


# --------------------------------------------------------------------------- 9: encoding


def test_latin1_byte_in_sheet_names_line_column_and_byte(tmp_path):
    src = tmp_path / "g.gbff"
    src.write_text("LOCUS x\n")
    sheet = tmp_path / "samples.tsv"
    sheet.write_bytes(
        f"{HEADER}\na\tE. coli\t{src}\tgbff\n".encode()
        + b"b\tCaf\xe9 yeast\t"
        + f"{src}\tgbff\n".encode()
    )
    with pytest.raises(SampleSheetError) as err:
        load_sample_sheet(sheet)
    assert str(err.value) == (
        f"{sheet}:3: byte 0xe9 at column 6 is not UTF-8 ('é' in Latin-1/Windows-1252?); save "
        "the sample sheet as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
    )
    sheet.write_bytes(b"\xef\xbb\xbf" + sheet.read_bytes())  # with a BOM: same line, column
    with pytest.raises(SampleSheetError, match=re.escape(f"{sheet}:3: byte 0xe9 at column 6 ")):
        load_sample_sheet(sheet)


# --------------------------------------------------------------------------- 10: GTF vs GFF3

GFF3 = textwrap.dedent(
    """\
    ##gff-version 3
    chr1\tx\tgene\t1\t12\t.\t+\t.\tID=g1;Name=abc
    chr1\tx\tmRNA\t1\t12\t.\t+\t.\tID=t1;Parent=g1
    chr1\tx\tCDS\t1\t6\t.\t+\t0\tID=c1;Parent=t1
    chr1\tx\tCDS\t7\t12\t.\t+\t0\tID=c1;Parent=t1
    """
)


def test_gtf_content_in_a_gff3_file_is_read_as_gtf(tmp_path, shared_data, caplog):
    gtf = shared_data / "fasta_gff/sacCer3_chrIV.annotation.gtf.gz"
    misnamed = tmp_path / "chrIV.gff3.gz"
    shutil.copy(gtf, misnamed)
    with caplog.at_level(logging.WARNING, logger="dnalm"):
        models = read_cds_models(misnamed)
    assert models == read_cds_models(gtf)
    assert len(models) == 836
    assert sum(m.stop_codon_added for m in models) == 836  # the GTF stop-codon rule applied
    assert (
        f"{misnamed}: the name says GFF3 but column 9 has GTF attribute syntax "
        '(key "value";); reading it as GTF'
    ) in caplog.text


def test_gff3_content_in_a_gtf_file_is_read_as_gff3(tmp_path, caplog):
    (tmp_path / "a.gff3").write_text(GFF3)
    (tmp_path / "a.gtf").write_text(GFF3)
    with caplog.at_level(logging.WARNING, logger="dnalm"):
        models = read_cds_models(tmp_path / "a.gtf")
    assert models == read_cds_models(tmp_path / "a.gff3")
    assert [(m.transcript_id, m.segments, m.gene_name) for m in models] == [
        ("t1", [(0, 12)], "abc")
    ]
    assert "the name says GTF but column 9 has GFF3 attribute syntax (key=value)" in caplog.text


def test_misnamed_gtf_extracts_through_run_cds(tmp_path, shared_data):
    gtf = shared_data / "fasta_gff/sacCer3_chrIV.annotation.gtf.gz"
    misnamed = tmp_path / "chrIV.gff3.gz"
    shutil.copy(gtf, misnamed)
    fasta = shared_data / "fasta_gff/sacCer3_chrIV.fa.gz"
    out = tmp_path / "out"
    result = run_cds("yeast", "fasta_gff", fasta, out / "y.fa.gz", out / "y.tsv", misnamed)
    assert result.n_kept == 836


# --------------------------------------------------------------------------- 11: unreadable


def _load_as(user: pwd.struct_passwd, sheet: Path) -> str:
    """load_sample_sheet(sheet) in a forked child that has become `user`; its error message
    (or 'loaded')."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            try:
                load_sample_sheet(sheet)
                message = "loaded"
            except SampleSheetError as err:
                message = str(err)
            os.write(write_end, message.encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        message = fh.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, message
    return message


def test_unreadable_source_is_refused_at_validation():
    """chmod 000: a real open() fails for an ordinary user. Root can read anything, so as
    root the check runs in a forked child that has become an unprivileged user (nobody)."""
    folder = Path(tempfile.mkdtemp(prefix="dnalm-unreadable-"))  # not under pytest's 0700 tmp
    try:
        folder.chmod(0o755)
        src = folder / "genome.gbff"
        src.write_text("LOCUS x\n")
        src.chmod(0o000)
        sheet = sheet_with(folder, f"a\tS\t{src}\tgbff", f"locked\tS\t{src}\tgbff")
        sheet.chmod(0o644)
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("nobody")
            except KeyError:
                pytest.skip("running as root and there is no user nobody to run the check as")
            message = _load_as(user, sheet)
        else:
            with pytest.raises(SampleSheetError) as err:
                load_sample_sheet(sheet)
            message = str(err.value)
        assert message == (
            f"{sheet}:2: sample a: local source file {src} cannot be read (Permission denied) "
            f"(looked at {src}); make it readable for the user running the workflow "
            "(e.g. chmod a+r)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_unreadable_source_check_uses_open(tmp_path, monkeypatch):
    """The same check, in process (root included): open() refusing is what counts."""
    import dnalm.genome.samples

    src = tmp_path / "genome.gbff"
    src.write_text("LOCUS x\n")
    sheet = sheet_with(tmp_path, f"a\tS\t{src}\tgbff")

    def refuse(path, *args, **kwargs):
        if Path(path) == src:
            raise PermissionError(13, "Permission denied", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(dnalm.genome.samples, "open", refuse, raising=False)
    with pytest.raises(SampleSheetError) as err:
        load_sample_sheet(sheet)
    assert str(err.value).startswith(
        f"{sheet}:2: sample a: local source file {src} cannot be read (Permission denied)"
    )


# --------------------------------------------------------------------------- 12: compression


def _compressed(kind: str, data: bytes, folder: Path) -> bytes:
    if kind == "zip":
        buf = folder / "x.zip"
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("NC_005816.gb", data)
        return buf.read_bytes()
    if kind == "bzip2":
        return bz2.compress(data)
    if kind == "xz":
        return lzma.compress(data)
    if shutil.which("zstd"):
        return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True).stdout
    return b"\x28\xb5\x2f\xfd" + bytes(16)  # the zstd frame magic


COMPRESSED = {
    "zip": ("a zip archive", "unzip"),
    "bzip2": ("a bzip2-compressed file", "bunzip2"),
    "xz": ("an xz-compressed file", "unxz"),
    "zstd": ("a zstd-compressed file", "unzstd"),
}


@pytest.mark.parametrize("kind", list(COMPRESSED))
def test_compressed_sources_are_named(tmp_path, shared_data, server, kind):
    what, unpack = COMPRESSED[kind]
    data = _compressed(kind, (shared_data / "genbank/NC_005816.gb").read_bytes(), tmp_path)
    src = tmp_path / f"genome.gbff.{kind}"
    src.write_bytes(data)
    tail = f"is {what}, not a plain or gzip-compressed file"
    # sheet validation
    sheet = sheet_with(tmp_path, f"y\tS\t{src}\tgbff")
    with pytest.raises(SampleSheetError) as err:
        load_sample_sheet(sheet)
    assert str(err.value).startswith(f"{sheet}:2: sample y: local source file {src} {tail}")
    assert f"only plain text and gzip (.gz) are read: unpack it ({unpack})" in str(err.value)
    # verify_sources
    with pytest.raises(DownloadError, match=re.escape(f"sample 'y' (genome): {src} {tail}")):
        verify_file(src, sample="y", kind="genome")
    # extraction (a sheet checked without files)
    out = tmp_path / "out"
    with pytest.raises(InputFormatError, match=re.escape(f"sample y: source {src} {tail}")):
        run_cds("y", "gbff", src, out / "y.fa.gz", out / "y.tsv")
    assert files_under(out) == []
    # download
    url = server.add_file(f"pub/genome.gbff.{kind}", data)
    dest = tmp_path / "resources/genomes/y"
    with pytest.raises(DownloadError, match=re.escape(f"sample 'y' (genome): {url} {tail}")):
        acquire("y", url, dest, retries=2, backoff=0.01, filename="primary")
    assert files_under(dest) == []
    assert server.hits(f"pub/genome.gbff.{kind}") == 1


# --------------------------------------------------------------------------- 13: HTML pages


def test_html_index_page_is_refused_at_download(tmp_path, server):
    """A URL of a folder (no trailing '/') redirects to an HTML index (text/html)."""
    server.add_file("pub/genomes/readme.txt", "x")
    url = server.url("pub/genomes")
    dest = tmp_path / "resources/genomes/s"
    with pytest.raises(DownloadError) as err:
        acquire("s", url, dest, filename="primary", retries=3, backoff=0.01)
    msg = str(err.value)
    assert msg.startswith(
        f"sample 's' (genome): {url} answered with an HTML page (Content-Type text/html"
    )
    assert "use the direct download link of the file. Nothing was saved" in msg
    assert files_under(dest) == []
    assert server.hits("pub/genomes") == 1  # not retried: the same page would come back


def test_html_body_is_refused_whatever_its_content_type(tmp_path, server):
    page = b"\n  <!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>\n"
    url = server.add_file("portal/download/genome.gbff", page)  # as octet-stream
    dest = tmp_path / "resources/genomes/s"
    dest.mkdir(parents=True)
    (dest / "primary").write_bytes(b"LOCUS old\n")
    with pytest.raises(DownloadError, match=re.escape(f"{url} answered with an HTML page")):
        download(url, dest / "primary", sample="s", retries=0)
    assert (dest / "primary").read_bytes() == b"LOCUS old\n"  # untouched
    assert files_under(dest) == ["primary"]


def test_html_page_left_by_an_earlier_run_fails_verification(tmp_path):
    cached = tmp_path / "resources/genomes/s/primary"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"<!doctype html><html><body>Not here</body></html>")
    with pytest.raises(DownloadError) as err:
        verify_file(cached, sample="s", kind="genome")
    assert str(err.value).startswith(f"sample 's' (genome): {cached} is an HTML page")
    assert "delete it so that the next run fetches it again" in str(err.value)


# --------------------------------------------------------------------------- 16: leftovers

KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from dnalm.genome.cds import _indexed_genome
from dnalm.core.io import atomic_write
out = Path(sys.argv[1])
open_writes = [atomic_write(out / name) for name in ("ecoli.tsv", "ecoli.fa.gz")]
for writer in open_writes:
    writer.__enter__().write("half a table")
genome = _indexed_genome(Path(sys.argv[2]), "ecoli", out)
genome.__enter__()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_leftovers_of_a_killed_run_are_removed_on_rerun(tmp_path, shared_data):
    out = tmp_path / "results/cds"
    out.mkdir(parents=True)
    cds = shared_data / "cds_fasta/ecoli_highly_expressed_genes.fasta"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(out), str(cds)],
        env={**os.environ, "PYTHONPATH": str(SCRIPTS)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = files_under(out)
    assert len([n for n in left if n.endswith(".part")]) == 2, left
    assert [n for n in left if n.startswith(".dnalm-genome-ecoli+")], left
    # another sample's temporary files (a running job) are not touched
    other = [out / ".ecoli.x.tsv.abcd1234.part", out / ".dnalm-genome-ecoli.x+abcd1234"]
    other[0].write_text("busy")
    other[1].mkdir()
    run_cds("ecoli", "cds_fasta", cds, out / "ecoli.fa.gz", out / "ecoli.tsv")
    assert files_under(out) == sorted(["ecoli.fa.gz", "ecoli.tsv", *(p.name for p in other)])
    assert pd.read_csv(out / "ecoli.tsv", sep="\t").shape[0] == 94


# --------------------------------------------------------------------------- 17: not a file


def _loop(folder: Path) -> Path:
    a, b = folder / "loop_a.gbff", folder / "loop_b.gbff"
    a.symlink_to(b)
    b.symlink_to(a)
    return a


def _broken(folder: Path) -> Path:
    link = folder / "broken.gbff"
    link.symlink_to(folder / "gone.gbff")
    return link


def _directory(folder: Path) -> Path:
    d = folder / "genome_dir"
    d.mkdir()
    return d


NOT_A_FILE = {
    "directory": (_directory, "is a directory, not a file", "give the path of the file inside"),
    "symlink loop": (_loop, "is a symbolic link loop", "point the link at the real file"),
    "broken link": (_broken, "is a broken symbolic link (to ", "fix or replace the link"),
}


@pytest.mark.parametrize("case", list(NOT_A_FILE))
def test_source_that_is_not_a_file_says_what_it_is(tmp_path, case):
    make, what, fix = NOT_A_FILE[case]
    src = make(tmp_path)
    sheet = sheet_with(tmp_path, f"s\tS\t{src}\tgbff")
    with pytest.raises(SampleSheetError) as err:
        load_sample_sheet(sheet)
    msg = str(err.value)
    assert msg.startswith(f"{sheet}:2: sample s: local source file {src} {what}")
    assert fix in msg
    assert "not found" not in msg
    with pytest.raises(DownloadError, match=re.escape(f"local file {str(src)!r} {what}")):
        resolve_local(str(src), sample="s")
