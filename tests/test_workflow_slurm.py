"""The SLURM side of dnalm: profiles/slurm against a real single-node SLURM.

- The test profile (tests/slurm/profile) may differ from profiles/slurm only in the test
  cluster's partition, status-check settings and group-job cap (its size), so a pass here is
  a pass for profiles/slurm.
- A dry run with profiles/slurm shows the GPU request of the GPU rules (no cluster needed).
- On a real cluster started by tests/support/slurm_cluster.py (root + slurm-wlm + munge, as in
CI): the
  smoke workflow (tests/slurm/smoke) runs through sbatch; GPU rules are submitted with a GPU
  request (scontrol shows it) and see CUDA_VISIBLE_DEVICES; a failed job is retried with more
  runtime and memory; jobs run with this Python environment; results equal a local run's.
- The real workflow on its test config (tests/config/config.yaml) gives the same results on
  SLURM as locally.

Every Snakemake run is under `timeout -k`, so a hang (e.g. status checks that never see the job)
fails the test instead of blocking the suite. Set DNALM_REQUIRE_SLURM=1 to turn the skip of the
cluster tests (not root, packages missing) into a failure, as CI should.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support import slurm_cluster as cluster
from tests.support.workflow_runner import make_workdir, snakemake

REPO = Path(__file__).resolve().parents[1]
SLURM_PROFILE = REPO / "profiles" / "slurm"
DEFAULT_PROFILE = REPO / "profiles" / "default"
TEST_PROFILE = REPO / "tests" / "slurm" / "profile"
SMOKE_SNAKEFILE = REPO / "tests" / "slurm" / "smoke" / "Snakefile"
LAUNCH_SNAKEFILE = REPO / "tests" / "slurm" / "launch" / "Snakefile"
GPU_RULES = ("pretrain", "finetune", "embed")
#: The only settings in which the test profile may differ from profiles/slurm.
TEST_ONLY_KEYS = {
    "slurm-status-command",
    "slurm-init-seconds-before-status-checks",
    "default-resources.slurm_partition",
    "resources",  # the group-job cap: the test cluster has 2 CPUs
}
SMOKE_TIMEOUT_S = 240
WORKFLOW_TIMEOUT_S = 1200
SUBMITTED_RE = re.compile(
    r"has been submitted with SLURM jobid (\d+) \(log: .*?/slurm_logs/rule_(\w+?)/"
)


# --------------------------------------------------------------------------- helpers


def flatten(mapping: dict, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1}: lets two profiles be compared key by key."""
    flat: dict[str, object] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def load_yaml(path: Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def load_profile(folder: Path) -> dict:
    return load_yaml(folder / "config.yaml")


def snakemake_env() -> dict[str, str]:
    """This interpreter's environment with its bin folder first on PATH (jobs inherit it)."""
    env = cluster.client_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_snakemake(
    args: list[str], *, cwd: Path, log: Path, timeout_s: int, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run Snakemake of this environment under `timeout -k`; output goes to `log` too."""
    cmd = ["timeout", "-k", "10", str(timeout_s), sys.executable, "-m", "snakemake", *args]
    proc = subprocess.run(
        cmd, cwd=cwd, env=env or snakemake_env(), capture_output=True, text=True, check=False
    )
    log.write_text(proc.stdout + proc.stderr)
    return proc


def failure(proc: subprocess.CompletedProcess, what: str) -> str:
    hung = " (killed by timeout: Snakemake hung)" if proc.returncode in (124, 137) else ""
    return f"{what} exited with {proc.returncode}{hung}:\n{(proc.stdout + proc.stderr)[-6000:]}"


def submissions(output: str) -> list[tuple[str, str]]:
    """(rule, slurm job id) of every sbatch submission that Snakemake logged, in order."""
    return [(rule, jobid) for jobid, rule in SUBMITTED_RE.findall(output)]


def scontrol_job(jobid: str) -> dict[str, str]:
    """`scontrol show job -o` as a dict (kept by slurmctld for MinJobAge seconds after the end)."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", jobid],
        env=cluster.ClusterInfo.env(None),  # type: ignore[arg-type]
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return dict(item.split("=", 1) for item in out.split() if "=" in item)


def check_submitted_jobs(output: str) -> None:
    """Every job this Snakemake run submitted completed; its GPU rules asked for a GPU."""
    jobs = submissions(output)
    assert jobs, "no job was submitted to SLURM:\n" + output[-3000:]
    assert "pretrain" in {rule for rule, _ in jobs}, jobs
    for rule, jobid in jobs:
        job = scontrol_job(jobid)
        assert job["JobState"] == "COMPLETED", (rule, job)
        if rule in GPU_RULES:
            assert gpu_request(job) is not None, (rule, job)


def gpu_request(job: dict[str, str]) -> str | None:
    """The GPU part of a job's request: TresPerJob (--gpus) or TresPerNode (--gres)."""
    for key in ("TresPerJob", "TresPerNode"):
        value = job.get(key, "")
        if "gpu" in value:
            return value
    return None


#: Columns of result tables that hold wall-clock times, which no two runs share.
TIMING_COLUMNS = ("train_seconds", "wall_time_s", "elapsed_s")


def content_digest(path: Path) -> str:
    """sha256 of a file's content; .gz files are compared decompressed (headers hold mtimes),
    and the TIMING_COLUMNS of .tsv tables are left out."""
    opener = gzip.open if path.suffix == ".gz" else open
    digest = hashlib.sha256()
    if path.suffix == ".tsv":
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
        keep = [i for i, c in enumerate(rows[0] if rows else []) if c not in TIMING_COLUMNS]
        for row in rows:
            digest.update("\t".join(row[i] for i in keep if i < len(row)).encode() + b"\n")
        return digest.hexdigest()
    with opener(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Outputs compared between a SLURM run and a local run: data tables, sequences, token arrays.
# Not compared: logs, benchmarks, JSON run records (timings, hosts), plots (metadata).
COMPARED_SUFFIXES = (".tsv", ".fa", ".fa.gz", ".npy", ".txt")


def result_digests(workdir: Path) -> dict[str, str]:
    results = workdir / "results"
    digests = {}
    for path in sorted(results.rglob("*")):
        rel = path.relative_to(results)
        if not path.is_file() or rel.parts[0] in ("logs", "benchmarks", "env"):
            continue
        if path.name.endswith(COMPARED_SUFFIXES):
            digests[str(rel)] = content_digest(path)
    return digests


# --------------------------------------------------------------------------- the cluster


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> cluster.ClusterInfo:
    """A running SLURM with 2 fake GPUs per node, shared by all pytest-xdist workers: the
    default partition has one node; a second slurmd on this host makes the two-node
    partition cluster.MULTI_PARTITION (for the multi-node launch).

    Workers register in a users folder under a lock; the last one to finish stops the cluster
    (daemons by their pid files, fake GPU devices, /etc/slurm/slurm.conf link).
    """
    ok, reason = cluster.slurm_available()
    if not ok:
        if os.environ.get("DNALM_REQUIRE_SLURM"):
            pytest.fail(f"DNALM_REQUIRE_SLURM is set but SLURM cannot run here: {reason}")
        pytest.skip(reason)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if worker != "main" else base
    state_dir = shared / "slurm-cluster"
    users = shared / "slurm-cluster-users"
    users.mkdir(exist_ok=True)
    lock_path = shared / "slurm-cluster.lock"

    @contextlib.contextmanager
    def locked():
        with open(lock_path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    with locked():
        started = time.monotonic()
        info = cluster.start(state_dir, gpus=2, nodes=2)
        print(f"SLURM cluster ready in {time.monotonic() - started:.1f} s ({state_dir})")
        (users / worker).touch()
    yield info
    with locked():
        (users / worker).unlink(missing_ok=True)
        if not any(users.iterdir()):
            cluster.stop(state_dir)


# --------------------------------------------------------------------------- profiles


def test_test_profile_differs_from_slurm_profile_only_in_cluster_keys():
    shipped = flatten(load_profile(SLURM_PROFILE))
    test = flatten(load_profile(TEST_PROFILE))
    differing = {k for k in shipped.keys() | test.keys() if shipped.get(k) != test.get(k)}
    assert differing <= TEST_ONLY_KEYS, (
        f"tests/slurm/profile/config.yaml differs from profiles/slurm/config.yaml in "
        f"{sorted(differing - TEST_ONLY_KEYS)}; make the same change in both files"
    )
    assert test["slurm-status-command"] == "squeue"  # the test cluster has no accounting
    assert test["default-resources.slurm_partition"] == cluster.PARTITION
    # The plugin silently falls back to sacct unless MinJobAge >= 3 x init seconds.
    assert 3 * test["slurm-init-seconds-before-status-checks"] <= 300
    # a group job of the test profile fits the test cluster: 2 jobs of 4000 MB at a time
    assert test["resources"] == ["mem_mb=8000"]


def test_slurm_profile_requests_a_gpu_for_each_gpu_rule():
    profile = load_profile(SLURM_PROFILE)
    assert profile["executor"] == "slurm"
    for rule in GPU_RULES:
        resources = profile["set-resources"][rule]
        if rule == "pretrain":
            # the GPU count of pretraining comes from config (pretrain.gpus), not the profile
            assert "gpu" not in resources
            assert "gres" not in resources
        else:
            assert resources.get("gpu") == 1 or "gpu" in str(resources.get("gres", "")), rule
        # Runtime and memory grow with the attempt, so that the retry gets more.
        assert "attempt" in str(resources["runtime"])
        assert "attempt" in str(resources["mem_mb"])
    assert profile["retries"] >= 1


def test_slurm_profile_books_no_gpu_for_the_cpu_cnn():
    """The one-hot CNN trains on the CPU unless baselines.onehot_cnn.train.device says
    otherwise, and its rule then books its GPU itself (Plan.gpus): a `gpu` or `gres` under
    set-resources would override the rule's gpu=0 and hold an idle GPU per CNN job."""
    schema = load_yaml(REPO / "workflow" / "schemas" / "config.schema.yaml")
    assert schema["$defs"]["cnn_train"]["properties"]["device"]["default"] == "cpu"
    for folder in (SLURM_PROFILE, TEST_PROFILE):
        resources = load_profile(folder)["set-resources"]["baseline_cnn"]
        assert not {"gpu", "gres"} & set(resources), (folder, resources)
        assert "attempt" in str(resources["runtime"])  # still its own limits


def test_dry_run_shows_gpu_request(tmp_path: Path):
    """`snakemake -n --profile profiles/slurm` from the repo root (no cluster needed), the
    command the README gives: the GPU rules list gpu=1 and grown-on-retry values, the CPU
    rule no GPU."""
    proc = run_snakemake(
        [
            "-n",
            "--snakefile",
            str(SMOKE_SNAKEFILE),
            "--directory",
            str(tmp_path),
            "--profile",
            "profiles/slurm",
        ],
        cwd=REPO,
        log=tmp_path / "dry-run.log",
        timeout_s=120,
    )
    assert proc.returncode == 0, failure(proc, "snakemake --dry-run")
    out = proc.stdout + proc.stderr
    assert "profiles/slurm" in out
    resources = dict(re.findall(r"\nrule (\w+):.*?\n\s+resources: ([^\n]*)", out, flags=re.S))
    assert set(resources) >= {"prepare", "pretrain", "embed"}, out[-3000:]
    for rule in ("pretrain", "embed"):
        assert "gpu=1" in resources[rule].split(", "), (rule, resources[rule])
    assert "runtime=720" in resources["pretrain"].split(", ")  # 720 * attempt, attempt 1
    assert not any(r.startswith("gpu=") for r in resources["prepare"].split(", "))


def _job_of(resources: str, threads: int):
    """A job with the `resources` of a dry run, as the executor plugins read one."""
    import types

    class Resources(dict):
        __getattr__ = dict.__getitem__

    values = {}
    for item in resources.split(", "):
        key, value = item.split("=", 1)
        if "<TBD>" not in value and key not in ("mem", "mem_mib", "tmpdir"):
            values[key] = int(value) if value.isdigit() else value
    return types.SimpleNamespace(
        resources=Resources(values), threads=threads, name="pretrain", is_group=lambda: False
    )


def _sbatch_of(resources: str, threads: int) -> str:
    """The sbatch command the SLURM executor plugin builds for a job with the `resources`
    of a dry run (its own get_submit_command and set_gres_string; no cluster needed)."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    job = _job_of(resources, threads)
    params = {"run_uuid": "u", "slurm_logfile": "l", "comment_str": "c", "workdir": "w"}
    params.update(account="", partition="")
    return get_submit_command(job, params) + set_gres_string(job)


@pytest.mark.parametrize(("nodes", "gpus"), [(2, 4), (1, 2)])
def test_pretraining_submission_asks_for_the_nodes_and_gpus_per_node(
    tmp_path: Path, shared_data, nodes, gpus
):
    """`pretrain.nodes: 2` (x 4 GPUs): the real workflow's dry run with profiles/slurm gives the
    pretraining job nodes=2, gres gpu:4 (per node), one task per node and mpi (the plugin
    then runs the job's script unwrapped, and the rule's srun starts a torchrun per node);
    the plugin turns that into sbatch --nodes=2 --ntasks=2 --gres=gpu:4. One node keeps
    --gpus=N and asks for one node (--nodes=1: SLURM must not split the GPUs of a
    `torchrun --standalone` job over two nodes), also on the job step's srun. The CPUs are
    pretrain.threads per GPU: the rule's threads and --cpus-per-task are threads x gpus."""
    from snakemake_executor_plugin_slurm_jobstep import get_cpu_setting, get_node_setting

    per_gpu = 3
    workdir = make_workdir(
        tmp_path / "wd",
        {"pretrain": {"nodes": nodes, "gpus": gpus, "strategy": "fsdp", "threads": per_gpu}},
        replace={"sweeps": {}},  # tiny test budgets: less than one step of 8 GPUs
    )
    # --cores: on a cluster the submit host's cores do not cap a job's threads
    proc = snakemake(
        workdir, "-n", "--profile", str(SLURM_PROFILE), "--until", "pretrain", timeout=300,
        cores=64,
    )  # fmt: skip
    assert proc.returncode == 0, failure(proc, "snakemake --dry-run")
    out = proc.stdout + proc.stderr
    found = re.findall(
        r"\nrule pretrain:\n(?:    [^\n]*\n)*?\s+threads: (\d+)\n\s+resources: ([^\n]*)", out
    )
    assert found, out[-3000:]
    for threads, resources in found:
        assert int(threads) == per_gpu * gpus, (threads, resources)
        job = _job_of(resources, threads=int(threads))
        sbatch = _sbatch_of(resources, threads=int(threads)).split()
        assert f"--cpus-per-task={per_gpu * gpus}" in sbatch, sbatch
        if nodes > 1:
            assert {"--nodes=2", "--ntasks=2", "--gres=gpu:4"} <= set(sbatch), sbatch
            assert not any(a.startswith(("--gpus", "--ntasks-per-gpu")) for a in sbatch)
        else:
            assert f"--gpus={gpus}" in sbatch, sbatch
            assert "--nodes=1" in sbatch, sbatch
            assert not any(a.startswith(("--ntasks", "--gres")) for a in sbatch)
            # the job step's srun (jobstep plugin, its own code): the same node and CPUs
            assert get_node_setting(job) == "--nodes=1"
            assert get_cpu_setting(job, True) == f"--cpus-per-task={per_gpu * gpus}"
        assert "--mem" in sbatch
        assert "-t" in sbatch


def test_many_samples_are_submitted_as_a_few_group_jobs(tmp_path: Path, shared_data):
    """200 genomes with the shipped profiles/slurm as it is (`group-components:
    sample_data=k` is on there): the cheap per-sample data jobs (extract_cds, which under
    splits.method identity also splits the sample) go out as ceil(200 / k) group jobs, not one
    SLURM job per small file (the dry run lists what would be submitted)."""
    import csv
    import math

    profile = load_profile(SLURM_PROFILE)
    groups = dict(item.split("=") for item in profile.get("group-components") or [])
    assert "sample_data" in groups, "profiles/slurm/config.yaml: group-components is off"
    per_job = int(groups["sample_data"])
    assert per_job > 1
    assert any(r.startswith("mem_mb=") for r in profile["resources"])  # the group-job cap
    lines = (REPO / "tests" / "config" / "samples.tsv").read_text().splitlines()
    rows = list(csv.DictReader([x for x in lines if not x.startswith("#")], delimiter="\t"))
    row = next(r for r in rows if r["sample"] == "spyogenes")
    sheet = tmp_path / "many.tsv"
    n = 200
    with open(sheet, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row), delimiter="\t")
        writer.writeheader()
        source = str((REPO / row["source"]).resolve())
        for i in range(n):
            writer.writerow({**row, "sample": f"g{i:04d}", "source": source})
    workdir = make_workdir(
        tmp_path / "wd", {"splits": {"method": "identity"}}, sheet=sheet, replace={"sweeps": {}}
    )
    proc = snakemake(
        workdir,
        "-n",
        "--profile",
        str(SLURM_PROFILE),
        "--until",
        "extract_cds",
        timeout=300,
    )
    assert proc.returncode == 0, failure(proc, "snakemake --dry-run")
    out = proc.stdout + proc.stderr
    groups = out.count("Group job sample_data")
    assert groups == math.ceil(n / per_job), out[-3000:]
    # every per-sample job is inside a group (indented), none on its own; the split is
    # extract_cds's (no split_cds job under identity)
    assert out.count("    rule extract_cds:") == n
    assert "\nrule extract_cds:" not in out
    assert "rule split_cds:" not in out
    assert out.count("results/splits/g0000/train.fa.gz") >= 1


# --------------------------------------------------------------------------- real cluster


@pytest.mark.slurm
@pytest.mark.slow
def test_smoke_workflow_through_slurm(slurm_cluster: cluster.ClusterInfo, tmp_path: Path):
    slurm_dir, local_dir = tmp_path / "slurm", tmp_path / "local"
    slurm_dir.mkdir()
    local_dir.mkdir()
    started = time.monotonic()
    proc = run_snakemake(
        [
            "--snakefile",
            str(SMOKE_SNAKEFILE),
            "--directory",
            str(slurm_dir),
            "--workflow-profile",
            str(TEST_PROFILE),
            "--config",
            "fail_first_attempt=True",
        ],
        cwd=slurm_dir,
        log=tmp_path / "slurm-run.log",
        timeout_s=SMOKE_TIMEOUT_S,
    )
    slurm_seconds = time.monotonic() - started
    assert proc.returncode == 0, failure(proc, "snakemake on SLURM")
    out = proc.stdout + proc.stderr
    print(f"smoke workflow on SLURM: {slurm_seconds:.1f} s")

    # Every job went through sbatch; prepare twice (its first attempt fails on purpose).
    jobs = submissions(out)
    by_rule: dict[str, list[str]] = {}
    for rule, jobid in jobs:
        by_rule.setdefault(rule, []).append(jobid)
    assert sorted(by_rule) == ["embed", "prepare", "pretrain"], out[-3000:]
    assert len(by_rule["prepare"]) == 2, by_rule
    assert len(by_rule["pretrain"]) == 1, by_rule

    for rule in ("prepare", "pretrain", "embed"):
        record = json.loads((slurm_dir / "results" / "env" / f"{rule}.json").read_text())
        # The job that wrote the result is the last one Snakemake submitted for the rule.
        assert record["slurm_job_id"] == by_rule[rule][-1], (rule, record)
        # Jobs inherit the environment: this venv's python and snakemake.
        assert Path(record["python"]).parent == Path(sys.executable).parent, record
        assert Path(record["snakemake_on_path"]).parent == Path(sys.executable).parent
        job = scontrol_job(record["slurm_job_id"])
        assert job["JobState"] == "COMPLETED"
        assert job["Partition"] == cluster.PARTITION
        if rule in GPU_RULES:
            assert (gpu_request(job) or "").endswith("gpu:1"), job
            assert re.fullmatch(r"\d+", record["cuda_visible_devices"] or ""), record
        else:
            assert gpu_request(job) is None, job
            assert record["cuda_visible_devices"] is None, record

    # The retry asked for twice the runtime and memory (profiles/slurm: "60 * attempt" etc.).
    first, second = (scontrol_job(j) for j in by_rule["prepare"])
    assert first["JobState"] == "FAILED"
    assert second["JobState"] == "COMPLETED"
    assert (first["TimeLimit"], second["TimeLimit"]) == ("01:00:00", "02:00:00")
    assert (first["MinMemoryNode"], second["MinMemoryNode"]) == ("4000M", "8000M")

    # The same workflow locally (profiles/default) gives the same results.
    proc = run_snakemake(
        [
            "--snakefile",
            str(SMOKE_SNAKEFILE),
            "--directory",
            str(local_dir),
            "--workflow-profile",
            str(DEFAULT_PROFILE),
            "--cores",
            "2",
        ],
        cwd=local_dir,
        log=tmp_path / "local-run.log",
        timeout_s=SMOKE_TIMEOUT_S,
    )
    assert proc.returncode == 0, failure(proc, "snakemake locally")
    assert "SLURM jobid" not in proc.stdout + proc.stderr
    local_env = json.loads((local_dir / "results" / "env" / "pretrain.json").read_text())
    assert local_env["slurm_job_id"] is None
    slurm_results, local_results = result_digests(slurm_dir), result_digests(local_dir)
    assert set(slurm_results) == {"data.txt", "model.txt", "embedding.txt"}
    assert slurm_results == local_results


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.parametrize("configfile", ["tests/config/config.yaml"])
def test_real_workflow_on_slurm_equals_local(
    slurm_cluster: cluster.ClusterInfo, shared_data: Path, tmp_path: Path, configfile: str
):
    """The real workflow on its test config: through SLURM (test profile) and locally
    (profiles/default), with the same results. Pretraining books two GPUs (pretrain.gpus:
    2), so both runs launch torchrun with one process per GPU; without real GPUs the two
    processes train on the CPU with the gloo backend, which exercises the launch."""
    config_path = REPO / configfile
    if not config_path.exists():
        pytest.skip(f"{configfile} does not exist yet: the real workflow's test config")
    from tests.support.workflow_runner import SLIM_SAMPLES, SNAKEFILE, make_workdir, slim_config

    # A slim version of the test config: three small genomes, one tokenizer, one GPU rule.
    keep, replace = list(SLIM_SAMPLES), slim_config(gpus=2)
    runs = {}
    for name, profile in (("slurm", TEST_PROFILE), ("local", DEFAULT_PROFILE)):
        workdir = make_workdir(tmp_path / name, test_config=config_path, keep=keep, replace=replace)
        args = [
            "--snakefile",
            str(SNAKEFILE),
            "--directory",
            str(workdir),
            "--workflow-profile",
            str(profile),
            # The test node has few CPUs; a rule asking for more threads could not be scheduled.
            "--max-threads",
            str(slurm_cluster.cpus),
            *(["--cores", "2"] if name == "local" else []),
        ]
        started = time.monotonic()
        proc = run_snakemake(
            args, cwd=workdir, log=tmp_path / f"{name}.log", timeout_s=WORKFLOW_TIMEOUT_S
        )
        print(f"real workflow, {name}: {time.monotonic() - started:.1f} s")
        assert proc.returncode == 0, failure(proc, f"snakemake ({name})")
        runs[name] = (workdir, proc.stdout + proc.stderr)
        if name == "slurm":
            # Read the job records now: slurmctld forgets a finished job after MinJobAge.
            check_submitted_jobs(runs["slurm"][1])

    assert "SLURM jobid" not in runs["local"][1]
    for name, (workdir, _) in runs.items():
        log = (workdir / "results/logs/pretrain/gpt_nucleotide.log").read_text()
        assert "torch.distributed.run --standalone --nproc-per-node=2" in log, name
        run = json.loads((workdir / "results/models/gpt_nucleotide/run.json").read_text())
        assert (run["world_size"], run["steps"]) == (2, 10), name
    slurm_results = result_digests(runs["slurm"][0])
    assert slurm_results, "the SLURM run wrote no comparable results"
    assert slurm_results == result_digests(runs["local"][0])


@pytest.mark.slurm
@pytest.mark.slow
def test_two_node_pretraining_starts_under_the_job_step_plugin(
    slurm_cluster: cluster.ClusterInfo, tmp_path: Path
):
    """pretrain.nodes: 2 through the real plugins on a real two-node allocation (two slurmd
    on this host): Snakemake submits the job (sbatch --nodes=2), the job-step plugin runs the
    rule's script with the SLURM_* variables stripped, and dnalm's launch() finds the nodes
    from the job id, runs `srun ... torch.distributed.run` with one torchrun per node (c10d
    rendezvous on the first node's address, --cpus-per-task from the rule's threads) and
    trains on 2 gloo processes to the end (test split and export by rank 0)."""
    from tests.support.lm_corpus import make_corpus

    workdir = tmp_path / "wd"
    make_corpus(workdir / "corpus")
    env = snakemake_env()
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "workflow" / "scripts"), str(REPO)])
    env["OMP_NUM_THREADS"] = "1"
    proc = run_snakemake(
        [
            "--snakefile", str(LAUNCH_SNAKEFILE), "--directory", str(workdir),
            "--workflow-profile", str(TEST_PROFILE),
            "--retries", "0",  # a failed launch fails at once (a retry would fail alike)
        ],
        cwd=workdir, log=tmp_path / "launch-run.log", timeout_s=SMOKE_TIMEOUT_S, env=env,
    )  # fmt: skip
    log = workdir / "logs" / "pretrain.log"
    job_logs = sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert proc.returncode == 0, failure(proc, "snakemake on SLURM") + "".join(
        f"\n{path}:\n{path.read_text()[-3000:]}" for path in [log, *job_logs] if path.exists()
    )
    ((rule, jobid),) = submissions(proc.stdout + proc.stderr)
    job = scontrol_job(jobid)
    assert (rule, job["JobState"], job["NumNodes"]) == ("pretrain", "COMPLETED", "2"), job
    assert job["Partition"] == cluster.MULTI_PARTITION

    # what the job-step plugin left to the script: the job id, not the node list or CPUs
    seen = json.loads((workdir / "env.json").read_text())
    assert seen["SLURM_JOB_ID"] == jobid
    assert not {"SLURM_JOB_NODELIST", "SLURM_NODELIST", "SLURM_CPUS_PER_TASK"} & set(seen), seen

    text = log.read_text()
    (launched,) = [line for line in text.splitlines() if line.startswith("launching: ")]
    cmd = launched.split()[1:]
    assert cmd[:5] == [
        "srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--cpus-per-task=1"
    ], cmd  # fmt: skip
    assert "--rdzv-endpoint=127.0.0.1:29500" in cmd  # the first node's NodeAddr
    assert f"--rdzv-id={jobid}" in cmd
    record = json.loads((workdir / "model" / "run.json").read_text())
    assert record["world_size"] == 2
    assert record["train"]["threads"] == 1
    assert json.loads((workdir / "model" / "metrics.json").read_text())
