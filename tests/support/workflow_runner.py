"""Run the real workflow in a temporary working directory, as a user would from a clone.

The working directory gets `config/config.yaml` (the repository's defaults merged with the
test config and any overrides) and a sample sheet whose relative paths are made absolute,
so that nothing is written into the repository's own results/ or resources/."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import yaml

from dnalm.core.config import ProbeConfig
from dnalm.genome.samples import classify_source

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "workflow" / "Snakefile"


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def demo_config(**over) -> dict:
    """config/config.yaml with tests/config/demo.yaml on top (as `snakemake --configfile
    tests/config/demo.yaml` merges them), then `over` on top of that."""
    config: dict = {}
    for path in (REPO / "config/config.yaml", REPO / "tests/config/demo.yaml", None):
        layer = yaml.safe_load(path.read_text()) if path else over
        config = deep_merge(config, layer)
    return config


def repo_path(value):
    """A relative local path of the shipped configs, made absolute from the repo root (where
    they expect to run); URLs, accessions, absolute paths, empty values and paths under
    results/ (outputs of the run itself) pass unchanged."""
    if isinstance(value, str) and value.startswith("results/"):
        return value
    if isinstance(value, str) and value and classify_source(value) == "local":
        return str((REPO / value).resolve())
    return value


def fail_message(proc: subprocess.CompletedProcess) -> str:
    return (
        f"snakemake exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
        f"\n--- stderr\n{proc.stderr[-8000:]}"
    )


#: Three small genomes of tests/config/samples.tsv, for runs that exercise the machinery
#: (cluster submission, torchrun launch) rather than the data. Each SLURM job costs seconds of
#: overhead on the 2-core test node (all 14 samples: 44 jobs, 271 s).
SLIM_SAMPLES = ("ypestis_pPCP1", "phiX174", "ecoli_hx")


def slim_config(gpus: int = 1, model: str = "gpt_nucleotide") -> dict:
    """`replace` for make_workdir: one tokenizer, no tasks (so no fine-tuning, probes or
    attributions), one tiny GPT trained 10 steps, no sweep, generation, gene completion,
    robustness panel, variant effects or DNA+text stage."""
    return {
        "tokenizers": {"nucleotide": {"type": "nucleotide"}},
        "tasks": {
            "species_fragments": {"enabled": False},
            "tf_binding": {"sequences": None},
            "sequence_tasks": {},
        },
        "pretrain": {
            "models": {model: {"objective": "gpt", "tokenizer": "nucleotide", "preset": "tiny"}},
            "train": {
                "max_steps": 10,
                "micro_batch_size": 4,
                "warmup_steps": 2,
                "eval_interval": 5,
                "eval_batches": 2,
                "log_interval": 5,
                "threads": 1,
            },
            "gpus": gpus,
            "threads": 1,
        },
        # single-process jobs book at most one GPU (finetune.gpus > 1 is refused)
        "finetune": {"runs": {}, "train": {}, "per_task": {}, "gpus": min(gpus, 1), "threads": 1},
        # the baselines' defaults (no task here to train them on; the test configs' CNN
        # seed_tasks would name tasks this config does not have)
        "baselines": {},
        "probe": {"enabled": False, "finetuned": [], "external": {}},
        "generate": {"enabled": False},
        "interpret": {"enabled": False},
        "dnatext": {"enabled": False},
        "vep": {"enabled": False},
        "gene_completion": {"enabled": False},
        "robustness": {"enabled": False},
        "sweeps": {},
    }


def absolutize_sheet(src: Path, dst: Path, keep: list[str] | None = None) -> list[str]:
    """Copy a sample sheet, making relative local paths absolute (relative to the repo root,
    where the shipped sheets expect to run). `keep` selects samples by ID."""
    with open(src, encoding="utf-8") as fh:
        lines = [line for line in fh if line.strip() and not line.startswith("#")]
    rows = list(csv.DictReader(lines, delimiter="\t"))
    if keep is not None:
        rows = [r for r in rows if r["sample"] in keep]
    for row in rows:
        for col in ("source", "annotation"):
            if col in row:
                row[col] = repo_path(row[col])
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return [r["sample"] for r in rows]


def absolutize_task_paths(config: dict) -> None:
    """Task input paths in the test config are relative to the repository root."""
    tasks = config.get("tasks") or {}
    tf = tasks.get("tf_binding") or {}
    for key in ("sequences", "scores", "genome"):
        if tf.get(key):
            tf[key] = repo_path(tf[key])
    for task in (tasks.get("sequence_tasks") or {}).values():
        for key in ("table", "test_table"):
            if task.get(key):
                task[key] = repo_path(task[key])
        for key in ("fasta_by_class", "test_fasta_by_class"):
            task[key] = {k: repo_path(v) for k, v in (task.get(key) or {}).items()}


def prune_corpora(config: dict, samples: set[str]) -> None:
    """Fit the test config's corpora to a smaller sheet: samples not on it leave the corpora's
    `samples` lists; a corpus left with none goes, with the models pretrained on it and the
    sequence tasks generated by them; variant effects on a sample not on the sheet, and gene
    completion, the robustness panel, checkpoint analytics or the layer probe naming a sample,
    model or sweep not there, are switched off; attributions of runs not there are left out."""
    corpora = config.get("corpora") or {}
    gone = set()
    for name, spec in list(corpora.items()):
        if spec.get("samples") is None:
            continue
        spec["samples"] = [s for s in spec["samples"] if s in samples]
        held = (spec.get("split") or {}).get("contigs")
        if held:
            spec["split"]["contigs"] = {s: v for s, v in held.items() if s in samples}
        if not spec["samples"]:
            del corpora[name]
            gone.add(name)
    models = (config.get("pretrain") or {}).get("models") or {}
    dropped = {m for m, spec in models.items() if spec.get("corpus") in gone}
    for model in dropped:
        del models[model]
    tasks = (config.get("tasks") or {}).get("sequence_tasks") or {}
    for task in [t for t, spec in tasks.items() if (spec.get("generated") or {}).get("model")
                 in dropped]:  # fmt: skip
        del tasks[task]  # a TSTR / TRTS task on the samples of a dropped model
    generate = config.get("generate") or {}
    if generate.get("models") is not None:  # an explicit list names only models still there
        generate["models"] = [m for m in generate["models"] if m not in dropped]
    vep = config.get("vep") or {}
    if vep.get("sample") is not None and vep["sample"] not in samples:
        vep["enabled"] = False  # its sample is not on the smaller sheet
    # the demo's gene completion and robustness panel name samples and models: switched off
    # where the smaller sheet or a replaced pretrain section lacks one of them
    known = set(models) | set((config.get("models") or {}).get("external") or {})
    for key in ("gene_completion", "robustness"):
        section = config.get(key) or {}
        if not section.get("enabled"):
            continue
        if (
            not set(section.get("samples") or []) <= samples
            or not set(section.get("models") or []) <= known
        ):
            section["enabled"] = False
    # attributions of runs a replaced finetune section no longer has: left out
    interpret = config.get("interpret") or {}
    runs = set((config.get("finetune") or {}).get("runs") or {}) | {"onehot_cnn"}
    for task, names in list((interpret.get("runs") or {}).items()):
        interpret["runs"][task] = [n for n in names if n in runs]
    # the demo's checkpoint analytics name a model and a sweep: off where either is gone
    analytics = config.get("analytics") or {}
    if analytics.get("enabled") and (
        not set(analytics.get("runs") or []) <= set(models)
        or not set(analytics.get("sweeps") or []) <= set(config.get("sweeps") or {})
    ):
        analytics["enabled"] = False
    # the demo's layer probe names a probed model: off where the probe no longer embeds it
    probe = config.get("probe") or {}
    named = probe.get("layer_models")
    if named is not None:
        probed = (
            set(probe.get("models") or []) & set(models)
            | set(probe.get("finetuned") or [])
            | set(probe.get("external") or {})
        )
        if not probe.get("enabled", True) or not set(named) <= probed:
            main = ProbeConfig(pooling=probe["pooling"]).main_pooling
            probe.update(layers="last", layer_models=None, pooling=main)


def make_workdir(
    workdir: Path,
    config_overrides: dict | None = None,
    sheet: Path | None = None,
    keep: list[str] | None = None,
    test_config: Path | None = REPO / "tests" / "config" / "config.yaml",
    replace: dict | None = None,
) -> Path:
    """Prepare `workdir` with config/config.yaml and config/samples.tsv. `replace` sets
    whole top-level keys after merging (Snakemake-style merging cannot remove entries)."""
    with open(REPO / "config" / "config.yaml", encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    if test_config is not None:
        with open(test_config, encoding="utf-8") as fh:
            config = deep_merge(config, yaml.safe_load(fh) or {})
    config = deep_merge(config, config_overrides or {})
    config.update(replace or {})
    absolutize_task_paths(config)
    sheet = sheet or REPO / config["samples"]
    kept = absolutize_sheet(Path(sheet), workdir / "config" / "samples.tsv", keep)
    prune_corpora(config, set(kept))
    config["samples"] = "config/samples.tsv"
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return workdir


def snakemake(
    workdir: Path, *args: str, cores: int = 2, timeout: float = 1500, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run snakemake on `workdir` (output captured; check .returncode)."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        str(workdir),
        "--cores",
        str(cores),
        "--workflow-profile",
        str(REPO / "profiles" / "default"),
        *args,
    ]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=full_env
    )
