"""The ``suites`` config section: public benchmark suites as task sources, checked at DAG
build (every error names the key under ``suites``) and resolved into one task per suite
task (:mod:`dnalm.tasks.suites` builds them with the rule suite_task).

A suite's ``source`` is a local folder holding one folder per task in the suite's own
layout, or (formats whose files are fixed) its URL: each ``<source>/<task>/<file>`` is then
a task file, and a Hub dataset page is read at the pinned ``revision``. Every download is
done by the rule download_task_file (the data stage's downloader: atomic, retried, HTML
refused, checked against the entry's ``sha256``, keyed by ``<task>/<file>``), and so are the
reference genomes a Genomic Benchmarks ``metadata.yaml`` names (keyed by their file name),
unless the entry's ``genome`` gives the FASTA to use instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnalm.core.errors import ConfigError, DnalmError
from dnalm.genome import taskfiles
from dnalm.genome.samples import expand_local
from dnalm.kinds.suites import SUITE_FORMATS, suite_task_name
from dnalm.tasks.suites import gb_metadata, suite_files

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: a Hugging Face Hub dataset page: its files are under <page>/resolve/<revision>/
HUB_DATASET_RE = re.compile(r"^https://huggingface\.co/datasets/[^/]+/[^/]+/?$")


@dataclass(frozen=True)
class SuiteDownload:
    """A file a suite downloads (rule download_task_file) and the key of its sha256."""

    file: taskfiles.TaskFile
    sha_key: str

    @property
    def path(self) -> str:
        return self.file.path


def _remote_base(where: str, spec: Mapping[str, Any]) -> str:
    """The URL a remote suite's task folders are under: a Hub dataset page becomes its
    files at the pinned `revision` (required there)."""
    source = spec["source"].rstrip("/")
    if spec["format"] == "genomic_benchmarks":
        raise ConfigError(
            f"{where}.source: {source!r} is a URL, but a Genomic Benchmarks task's classes "
            "are known only from its metadata.yaml; give a local copy of the suite's "
            "datasets/ folder (its reference genomes are still downloaded)"
        )
    if HUB_DATASET_RE.match(source + "/"):
        if not spec.get("revision"):
            raise ConfigError(
                f"{where}.revision: {source!r} is a Hub dataset; pin the commit (or tag) to "
                "read as `revision`, so that every run reads the same files"
            )
        return f"{source}/resolve/{spec['revision']}"
    return source


def _remote_files(
    key: str, spec: Mapping[str, Any], fmt, folder: str, task: str
) -> tuple[dict[str, str], dict, dict[str, SuiteDownload]]:
    """(files by key, no genomes, downloads) of a task folder at a URL: the format's
    required files (optional ones cannot be seen without the network), each a task file
    checked against the entry's sha256 of ``<task>/<file>``."""
    sha = {str(k): str(v).lower() for k, v in (spec.get("sha256") or {}).items()}
    files, downloads = {}, {}
    for rel in fmt.files:
        sha_key = f"{task.strip('/')}/{rel}"
        fragment = f"#sha256={sha[sha_key]}" if sha_key in sha else ""
        tf = taskfiles.parse(f"{folder}/{rel}{fragment}", f"{key} ({rel})")
        downloads[Path(tf.path).parent.name] = SuiteDownload(tf, sha_key)
        files[rel.split(".")[0]] = tf.path
    return files, {}, downloads


def _genomes(
    where: str, spec: Mapping[str, Any], metadata: Path
) -> tuple[dict[str, str], dict[str, SuiteDownload]]:
    """(reference URL of each class -> local FASTA path, files to download)."""
    classes = gb_metadata(metadata)
    urls = sorted({c["url"] for c in classes.values()})
    override = spec.get("genome")
    sha = {str(k): str(v).lower() for k, v in (spec.get("sha256") or {}).items()}
    local, downloads = {}, {}
    for url in urls:
        value = override or url
        if taskfiles.is_url(value):
            name = value.partition("#")[0].rsplit("/", 1)[-1]
            fragment = f"#sha256={sha[name]}" if name in sha and "#" not in value else ""
            tf = taskfiles.parse(value + fragment, f"{where} (reference of {metadata})")
            downloads[Path(tf.path).parent.name] = SuiteDownload(tf, name)
            local[url] = tf.path
        else:
            path = expand_local(value)
            if not path.is_file():
                raise ConfigError(
                    f"{where}.genome: {value!r} is not a file; give the reference FASTA of "
                    f"{metadata} (plain or gzipped), or leave `genome` out to download {url}"
                )
            local[url] = str(path)
    return local, downloads


def load_suites(config: Mapping[str, Any], taken: set[str]) -> dict[str, dict]:
    """The task of every suite task by its name (``<suite>_<task>``), checked: the source
    folder and each task folder exist and hold the format's files, names are free
    (`taken`: the other task names), sha256 keys name a downloaded file. ConfigError
    names the key under ``suites``."""
    tasks: dict[str, dict] = {}
    for suite, spec in (config.get("suites") or {}).items():
        where = f"suites.{suite}"
        fmt = SUITE_FORMATS.get(spec["format"])
        source = spec["source"]
        remote = taskfiles.is_url(source)
        base = _remote_base(where, spec) if remote else expand_local(source)
        if not remote and not base.is_dir():
            raise ConfigError(
                f"{where}.source: {source!r} is not a folder; give the folder that holds one "
                f"folder per task of the {fmt.name} suite ({fmt.summary})"
            )
        downloaded: set[str] = set()
        for i, task in enumerate(spec["tasks"]):
            key = f"{where}.tasks[{i}]"
            name = suite_task_name(suite, task)
            if not NAME_RE.match(name) or ".." in Path(task).parts:
                raise ConfigError(
                    f"{key}: {task!r} does not make a task name ({name!r}); use the task's "
                    "folder under the source (letters, digits, '_', '.', '-', '/')"
                )
            if name in taken or name in tasks:
                raise ConfigError(
                    f"{key}: the task name {name!r} is taken by another task; rename the "
                    f"suite {suite!r} or the other task"
                )
            if remote:
                folder = f"{base}/{task.strip('/')}"
                files, genomes, downloads = _remote_files(key, spec, fmt, folder, task)
            else:
                folder = base / task
                if not folder.is_dir():
                    raise ConfigError(
                        f"{key}: {task!r} is not a folder under {base}; the tasks of a "
                        f"{fmt.name} suite are its task folders"
                    )
                try:
                    files = suite_files(fmt.name, folder)
                    genomes, downloads = (
                        _genomes(where, spec, files["metadata"])
                        if fmt.name == "genomic_benchmarks"
                        else ({}, {})
                    )
                except ConfigError:
                    raise
                except DnalmError as err:
                    raise ConfigError(f"{key}: {err}") from None
            downloaded |= {t.sha_key for t in downloads.values()}
            tasks[name] = {
                "suite": suite,
                "format": fmt.name,
                "task": task,
                "folder": str(folder),
                "source": source,
                "revision": spec.get("revision"),
                "metric": spec.get("metric") or fmt.metric,
                "validation": spec["validation"],
                "seed": spec["seed"],
                "files": {k: str(v) for k, v in files.items()},
                "genomes": genomes,
                "downloads": downloads,
            }
        unknown = sorted(set(spec.get("sha256") or {}) - downloaded)
        if unknown:
            raise ConfigError(
                f"{where}.sha256: {unknown} name no file this suite downloads "
                f"({sorted(downloaded) or 'none'}); key each checksum by the file name of "
                "a reference URL in a task's metadata.yaml, or by <task>/<file> of a file "
                "of a suite given as a URL"
            )
    return tasks


class SuitesMixin:
    """The Plan's inputs and parameters of the suite tasks (rule suite_task)."""

    suite_tasks: dict[str, dict]

    @property
    def suite_task_files(self) -> dict[str, taskfiles.TaskFile]:
        """The reference genomes the suite tasks download, by task-file id."""
        return {
            k: v.file for spec in self.suite_tasks.values() for k, v in spec["downloads"].items()
        }

    def suite_task_inputs(self, wildcards) -> dict:
        spec = self.suite_tasks[wildcards.stask]
        return {**spec["files"], "genomes": sorted(set(spec["genomes"].values()))}

    def suite_task_params(self, task: str) -> dict:
        """What the rule's job needs (the downloads are left out: their paths are inputs)."""
        return {k: v for k, v in self.suite_tasks[task].items() if k != "downloads"}

    def suite_metric(self, task: str) -> dict:
        """The suite and its official metric of a task ({} for a task of no suite): the
        comparison table names them."""
        spec = self.suite_tasks.get(task)
        if spec is None:
            return {}
        return {"suite": spec["suite"], "suite_format": spec["format"], "metric": spec["metric"]}

    # ---- the leakage audit and the suite table (rules suite_audit, suite_table)

    def suite_names(self) -> list[str]:
        """The configured suites that have tasks, in config order."""
        return list(dict.fromkeys(spec["suite"] for spec in self.suite_tasks.values()))

    def suite_task_list(self, suite: str) -> list[str]:
        return [t for t, spec in self.suite_tasks.items() if spec["suite"] == suite]

    def audit_references(self) -> dict[str, dict]:
        """The pretraining corpora the leakage audit searches, by model: each of our models'
        corpus (the train split of the corpus it pretrained on) and each external model
        whose entry lists its `corpus` files (checked to exist; ConfigError naming the key)."""
        out = {}
        for model, spec in sorted(self.models.items()):
            corpus = spec["corpus"]
            out[model] = {
                "kind": f"pretraining corpus {corpus} (train split)",
                "corpus": corpus,
                "files": self.corpus_split_files(corpus)["train"],
            }
        entries = (self.config.get("models") or {}).get("external") or {}
        for name, entry in sorted(entries.items()):
            files = list(entry.get("corpus") or [])
            for i, value in enumerate(files):
                if not expand_local(value).is_file():
                    raise ConfigError(
                        f"models.external.{name}.corpus[{i}]: {value!r} is not a file; list "
                        "the local FASTA files (plain or gzipped) the model was pretrained "
                        "on, or leave `corpus` out (the leakage audit then skips the model)"
                    )
            if files:
                out[name] = {
                    "kind": "external model corpus",
                    "corpus": None,
                    "files": [str(expand_local(v)) for v in files],
                }
        return out

    def suite_audit_inputs(self, wildcards) -> dict:
        """The suite's task tables, its runs' metrics (their predictions lie beside them)
        and the corpus files of every reference (a CDS corpus: the gathered split table;
        its FASTAs come as params)."""
        tasks = self.suite_task_list(wildcards.suite)
        inputs: dict[str, Any] = {
            "tasks": [f"results/tasks/{t}/data.tsv" for t in tasks],
            "runs": [
                f"{self.run_dir('finetune', r, t)}/metrics.json"
                for t in tasks
                for r in self.task_runs(t)
            ],
        }
        corpora = []
        for ref in self.audit_references().values():
            corpus = ref["corpus"]
            if corpus is not None and self.corpora[corpus]["source"] == "cds":
                inputs.update(self.splits_input(self.corpora[corpus]["samples"]))
            else:
                corpora += ref["files"]
        inputs["corpora"] = sorted(set(corpora))
        return inputs

    def suite_audit_params(self, suite: str) -> dict:
        """What rule suite_audit needs: each task's table, metric and runs (folder, and the
        model it learnt from: None for a baseline), the references, k."""
        tasks = {}
        for task in self.suite_task_list(suite):
            runs = {}
            for run in self.task_runs(task):
                model = self.runs[run]["model"] if run in self.runs else None
                runs[run] = {"dir": self.run_dir("finetune", run, task), "model": model}
            tasks[task] = {
                "data": f"results/tasks/{task}/data.tsv",
                "metric": self.suite_tasks[task]["metric"],
                "runs": runs,
            }
        refs = {
            k: {"kind": v["kind"], "files": v["files"]} for k, v in self.audit_references().items()
        }
        k = (self.config.get("suites") or {})[suite]["audit_k"]
        return {"tasks": tasks, "references": refs, "k": k}

    def suite_table_inputs(self, wildcards) -> list[str]:
        """The comparison table of every task of the suite that has runs."""
        return [
            f"results/finetune/{t}/comparison.tsv"
            for t in self.suite_task_list(wildcards.suite)
            if self.task_runs(t)
        ]

    def suite_published(self, suite: str) -> dict:
        """`suites.X.published` with its task keys turned into our task names; ConfigError
        naming a task the suite does not list."""
        spec = (self.config.get("suites") or {})[suite]
        tasks = {spec_t["task"]: name for name, spec_t in self.suite_tasks.items()
                 if spec_t["suite"] == suite}  # fmt: skip
        out = {}
        for task, values in (spec.get("published") or {}).items():
            if task not in tasks:
                raise ConfigError(
                    f"suites.{suite}.published.{task}: not a task of the suite (tasks: "
                    f"{', '.join(tasks)}); key each published number by a name of `tasks`"
                )
            out[tasks[task]] = {str(m): float(v) for m, v in values.items()}
        return out

    def suite_targets(self) -> list[str]:
        """The audit, table and figure of every suite whose tasks have runs (the external
        models' `corpus` files are checked here, suites or not)."""
        self.audit_references()
        out = []
        for suite in self.suite_names():
            self.suite_published(suite)
            if not any(self.task_runs(t) for t in self.suite_task_list(suite)):
                continue
            out += [
                f"results/suites/{suite}/audit.tsv",
                f"results/suites/{suite}/table.tsv",
                f"results/figures/suites/{suite}/table.png",
            ]
        return out
