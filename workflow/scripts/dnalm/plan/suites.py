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
