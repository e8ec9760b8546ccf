"""The per-sample data jobs as commands (dnalm.genome.jobs, run by rules verify_sources and
extract_cds with `shell:`): the flags the plan builds read back to the same sample and
settings, the commands do the work and write their logs, a bad input fails with the file
named in the log and on stderr and no output left, and the Python a shell: rule runs
(dnalm.core.smk.job_python)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from dnalm.core.errors import ConfigError
from dnalm.core.smk import ShellText, job_python
from dnalm.genome.jobs import _sample, build_parser, cds_args, sample_args, split_args
from dnalm.genome.samples import Sample

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"


def run_job(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m dnalm.genome.jobs ARGS` as the rule runs it (the library on PYTHONPATH)."""
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS)}
    return subprocess.run(
        [sys.executable, "-m", "dnalm.genome.jobs", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


#: the files of an extract-cds command, for parsing only
EXTRACT_FILES = ["--primary-file", "p", "--log", "l", "--fasta", "f", "--tsv", "t"]
#: a sample's flags, for parsing only
SAMPLE = ["--sample", "s", "--species", "S", "--source", "x", "--format", "gbff"]


def test_sample_flags_read_back_to_the_sample():
    sample = Sample(
        sample="yp",
        species="Yersinia pestis 'KIM'",
        source="GCF_000009065.1",
        format="fasta_gff",
        annotation="ann dir/y.gff3",
        genetic_code=11,
        md5="a" * 32,
        sha256="b" * 64,
        annotation_md5="c" * 32,
        annotate="pyrodigal",
        annotate_mode="meta",
        line=7,
        pretrain=False,
    )
    args = sample_args(sample)
    assert args[:2] == ["--sample=yp", "--species=Yersinia pestis 'KIM'"]
    assert not [a for a in args if a.startswith(("--line", "--pretrain"))]  # not read by jobs
    parsed = build_parser().parse_args(
        ["verify-sources", *args, "--primary-file", "p", "--log", "l", "--record", "r"]
    )
    back = _sample(parsed)
    assert back == Sample(**{**sample.__dict__, "line": 0, "pretrain": True})
    dash = Sample(sample="d", species="-", source="-x.gbk", format="gbff")
    args = ["verify-sources", *sample_args(dash), "--primary-file", "p", "--log", "l"]
    assert _sample(build_parser().parse_args([*args, "--record", "r"])) == dash
    plain = Sample(sample="s", species="S", source="s.fa", format="cds_fasta")
    assert sample_args(plain) == [
        "--sample=s",
        "--species=S",
        "--source=s.fa",
        "--format=cds_fasta",
    ]
    parsed = build_parser().parse_args(["extract-cds", *sample_args(plain), *EXTRACT_FILES])
    assert _sample(parsed) == plain


def test_cds_and_split_flags_read_back_to_the_settings():
    cds = {"drop": ["pseudo", "too_short"], "min_length": 30, "allow_empty": True}
    split = {"seed": 7, "fractions": {"train": 0.7, "validation": 0.2, "test": 0.1}}
    args = [*cds_args({**cds, "max_drop_fraction": 0.25}), *split_args(split)]
    parsed = build_parser().parse_args(["extract-cds", *SAMPLE, *args, *EXTRACT_FILES])
    assert parsed.drop == ["pseudo", "too_short"]
    assert parsed.min_length == 30
    assert parsed.allow_empty is True
    assert parsed.max_drop_fraction == 0.25
    assert parsed.seed == 7
    assert dict(parsed.fraction) == split["fractions"]
    assert parsed.split_allow_empty is False
    # no drop reasons at all is a setting of its own (nothing but the always-dropped issues)
    none = build_parser().parse_args(
        ["extract-cds", *SAMPLE, *cds_args({"drop": []}), *EXTRACT_FILES]
    )
    assert none.drop == []
    with pytest.raises(ConfigError, match=r"unknown reason.*'pseudogene'"):
        cds_args({"drop": ["pseudogene"]})


def test_verify_sources_command_records_or_refuses_with_the_file_named(tmp_path):
    src = tmp_path / "cds.fa.gz"
    src.write_bytes(gzip.compress(b">a\nATGAAATAA\n"))
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    sample = Sample(sample="ec", species="E. coli", source=str(src), format="cds_fasta", md5=md5)
    record = tmp_path / "resources/genomes/ec/provenance.json"
    record.parent.mkdir(parents=True)
    log = tmp_path / "verify.log"
    common = ["--primary-file", str(src), "--annotation-file=", "--record", str(record)]
    proc = run_job("verify-sources", *sample_args(sample), *common, "--log", str(log), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(record.read_text())
    assert got["sample"] == "ec"
    assert got["species"] == "E. coli"
    assert got["files"]["primary"]["md5"] == md5
    assert got["files"]["primary"]["checked"] == ["md5", "gzip integrity"]
    assert "annotation" not in got["files"]

    record.unlink()
    wrong = Sample(**{**sample.__dict__, "md5": "0" * 32})
    proc = run_job("verify-sources", *sample_args(wrong), *common, "--log", str(log), cwd=tmp_path)
    assert proc.returncode == 1
    text = log.read_text()
    assert "ec" in text
    assert str(src) in text
    assert "0" * 32 in text
    assert "dnalm error:" in proc.stderr
    assert str(src) in proc.stderr
    assert not record.exists()
    assert not list(record.parent.iterdir())  # no partial record either


def test_extract_cds_command_extracts_splits_or_leaves_nothing(tmp_path, shared_data):
    gbk = shared_data / "genbank/NC_001422.gbk"
    sample = Sample(sample="phiX", species="phiX174", source=str(gbk), format="gbff")
    out = {
        "fasta": tmp_path / "results/cds/phiX.fa.gz",
        "tsv": tmp_path / "results/cds/phiX.tsv",
        "train": tmp_path / "results/splits/phiX/train.fa.gz",
        "validation": tmp_path / "results/splits/phiX/validation.fa.gz",
        "test": tmp_path / "results/splits/phiX/test.fa.gz",
        "assignment": tmp_path / "results/splits/phiX/assignment.tsv",
    }
    logs = {"cds": tmp_path / "cds.log", "splits": tmp_path / "splits.log"}
    files = [f"--{k}={v}" for k, v in out.items()]
    split = split_args({"seed": 42, "fractions": {"train": 0.8, "validation": 0.1, "test": 0.1}})
    args = [*sample_args(sample), *cds_args({"drop": ["pseudo"]}), *split, *files]
    args += ["--primary-file", str(gbk), "--log", str(logs["cds"])]
    proc = run_job("extract-cds", *args, "--split-log", str(logs["splits"]), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert all(path.is_file() for path in out.values())
    assert "sample phiX:" in logs["cds"].read_text()
    assert "phiX: train=" in logs["splits"].read_text()

    # the split's files without its log: refused before anything is written
    for path in out.values():
        path.unlink()
    proc = run_job("extract-cds", *args, cwd=tmp_path)
    assert proc.returncode == 1
    assert "--split-log" in logs["cds"].read_text()
    assert "dnalm error:" in proc.stderr
    assert not any(path.exists() for path in out.values())

    bad = tmp_path / "bad.gbk"
    text = gbk.read_text()
    bad.write_text(text[: len(text) // 2].replace("ORIGIN", "ORIGNI"))
    broken = Sample(sample="broken", species="X", source=str(bad), format="gbff")
    args = [*sample_args(broken), "--primary-file", str(bad), "--log", str(logs["cds"])]
    args += [f"--fasta={out['fasta']}", f"--tsv={out['tsv']}"]
    proc = run_job("extract-cds", *args, cwd=tmp_path)
    assert proc.returncode == 1
    assert str(bad) in logs["cds"].read_text()
    assert "dnalm error:" in proc.stderr
    assert str(bad) in proc.stderr
    assert not list(out["fasta"].parent.iterdir())  # no output, no temporary file


def test_job_python_is_the_conda_envs_python_or_the_one_running_snakemake(tmp_path):
    folder = tmp_path / "a dir" / "scripts"
    own = job_python(False, folder, executable="/opt/py env/bin/python")
    assert own == (
        f"PYTHONPATH={shlex.quote(str(folder))}${{PYTHONPATH:+:$PYTHONPATH}} "
        "'/opt/py env/bin/python'"
    )
    assert job_python(True, folder) == own.replace("'/opt/py env/bin/python'", "python")
    # what the shell makes of it: the library of `scripts` first, whatever PYTHONPATH holds
    prefix = job_python(False, SCRIPTS)
    code = "import dnalm, sys; print(dnalm.__file__); print(sys.executable)"
    for pythonpath in (None, str(tmp_path)):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", f"{prefix} -c {shlex.quote(code)}"],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        module, executable = proc.stdout.split()
        assert Path(module) == SCRIPTS / "dnalm" / "__init__.py"
        assert executable == sys.executable


def test_shell_text_goes_into_the_command_as_is():
    """A ShellText param is its text in the command (quoted already), whatever the spec."""
    flags = ShellText.words(["--species", "E. coli 'K-12'", "--source", "/a b/x.gbk", 11])
    assert f"{flags}" == "--species 'E. coli '\"'\"'K-12'\"'\"'' --source '/a b/x.gbk' 11"
    assert shlex.split(str(flags)) == [
        "--species",
        "E. coli 'K-12'",
        "--source",
        "/a b/x.gbk",
        "11",
    ]
    assert format(ShellText("a${B:+:$B} c"), "q") == "a${B:+:$B} c"
