"""The Plan: what the rules need of the config and the sample sheet, checked, as attributes
and methods (sample lists, models, runs, tasks, corpora, sweeps, the files each rule reads and
the run's targets). dnalm.plan.load builds it; common.smk exposes it to the rule files.

Methods that take `wildcards` are Snakemake input functions; the others are called while
the rule files are parsed or by those input functions. A bad config raises ConfigError
naming the key at fault; Plan.check (run by load) calls every method that the rule files
call while they are parsed, so all such errors come out of load.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dnalm.core.artifacts import PROVENANCE_JSON
from dnalm.core.config import CNNTrainConfig, FinetuneTrainConfig
from dnalm.core.errors import ConfigError, SampleSheetError
from dnalm.core.hub import ExternalModel
from dnalm.core.io import file_digest
from dnalm.core.smk import ShellText
from dnalm.genome import jobs, taskfiles
from dnalm.genome.samples import Sample, expand_local, no_cds_message
from dnalm.kinds.tasks import BUILTIN_TASKS, TASK_KINDS, selection_metric, task_kind_of
from dnalm.kinds.tokenizers import TOKENIZER_KINDS
from dnalm.plan.analytics import AnalyticsMixin
from dnalm.plan.external import ExternalMixin
from dnalm.plan.knowledge import KnowledgeMixin
from dnalm.plan.probe import ProbeMixin
from dnalm.plan.records import SampleTable
from dnalm.plan.stages import StagesMixin
from dnalm.plan.suites import SuitesMixin
from dnalm.tasks.common import has_coordinates
from dnalm.training.run import PretrainTrainConfig
from dnalm.training.track import check_backend

SPLITS = ("train", "validation", "test")
#: gather_splits' table of every CDS sample's split assignment (rewritten when any split changes)
SPLITS_TABLE = "results/splits/assignment.tsv"


def _task_path(value: str | None) -> str | None:
    """A task or BED file of the config, as a path from the working directory; a URL is the
    file the rule download_task_file saves it to (dnalm.genome.taskfiles); a relative path
    under results/ is an output of this workflow, left relative so that Snakemake builds it
    first (e.g. a genome corpus's held-out windows as the real side of a TSTR task)."""
    if value in (None, ""):
        return None
    if taskfiles.is_url(value):
        return taskfiles.parse(value, "").path
    if Path(value).parts[:1] == ("results",):
        return Path(value).as_posix()
    return str(expand_local(value))


#: The `device` key of each single-process GPU stage (finetune: fine-tuning and its kin,
#: probes, embeddings, generation and variant effects; cnn: the one-hot CNN).
GPU_DEVICE_KEYS = {
    "finetune": ("finetune", "train", "device"),
    "cnn": ("baselines", "onehot_cnn", "train", "device"),
    "interpret": ("interpret", "device"),
    "dnatext": ("dnatext", "device"),
}


@dataclass(frozen=True)
class ChangedSource:
    """A local source file that differs from its provenance record (Plan.changed_sources)."""

    sample: str
    which: str  # "primary" or "annotation"
    value: str  # as the sheet writes it
    record: Path  # resources/genomes/{sample}/provenance.json
    why: str  # e.g. "changed (size 10 -> 12 bytes)"


def _source_change(path: Path, recorded: dict, record_path: Path) -> str:
    """Why `path` is not the file `recorded` (a provenance.json entry) describes, when
    Snakemake would not notice (not newer than `record_path`); "" when it is, or when
    Snakemake reruns anyway."""
    try:
        st = path.stat()
    except OSError:
        return ""  # a missing file is the sheet check's and the job's to report
    if st.st_mtime > record_path.stat().st_mtime:
        return ""  # newer than the record: Snakemake reruns verify_sources itself
    size, mtime_ns = recorded.get("size"), recorded.get("mtime_ns")
    if size == st.st_size and (mtime_ns is None or mtime_ns == st.st_mtime_ns):
        return ""  # records written before mtime_ns existed are compared by size only
    if size != st.st_size:
        return f"changed (size {size} -> {st.st_size} bytes)"
    if file_digest(path, "sha256") == recorded.get("sha256"):
        return ""  # only its modification time changed
    return "changed (same size, another sha256)"


@dataclass
class Plan(StagesMixin, KnowledgeMixin, ExternalMixin, SuitesMixin, ProbeMixin, AnalyticsMixin):
    """The validated config and sample sheet of one run (see the module docstring)."""

    config: dict[str, Any]
    sample_list: list[Sample]
    samples: SampleTable
    tokenizers: dict[str, dict]
    models: dict[str, dict]  # pretrain.models with seed replicates and sweep points
    runs: dict[str, dict]  # finetune.runs with seed replicates
    cnn_runs: dict[str, int | None]  # one-hot CNN replicate -> seed
    sweeps: dict[str, list]  # sweep name -> its grid points (dnalm.training.sweeps)
    sweep_models: set[str]
    replicate_models: set[str]
    corpora: dict[str, dict]
    sequence_tasks: dict[str, dict]
    reproduce_rows: list[dict]
    dropped: list[str] = field(default_factory=list)
    external: dict[str, ExternalModel] = field(default_factory=dict)  # models.external
    suite_tasks: dict[str, dict] = field(default_factory=dict)  # suites, one entry per task

    # ---- samples (computed once: per-sample input functions read them)

    @cached_property
    def cds_samples(self) -> list[str]:
        """Samples with CDS (all but format fasta without annotate): CDS, QC, splits."""
        return [s.sample for s in self.sample_list if s.has_cds]

    @cached_property
    def pretrain_samples(self) -> list[str]:
        """Pretraining samples with CDS: they feed the CDS corpora."""
        return [s.sample for s in self.sample_list if s.pretrain and s.has_cds]

    @cached_property
    def pretrain_genome_samples(self) -> list[str]:
        """Pretraining samples with a genome sequence: they feed genome corpora."""
        return [s.sample for s in self.sample_list if s.pretrain and s.has_genome]

    @cached_property
    def species_samples(self) -> list[str]:
        return [s.sample for s in self.sample_list if s.species_task]

    @cached_property
    def window_corpora(self) -> list[str]:
        return sorted(c for c, s in self.corpora.items() if s["source"] in ("genome", "regions"))

    @cached_property
    def task_corpora(self) -> list[str]:
        return sorted(c for c, s in self.corpora.items() if s["source"] == "task")

    def notes(self) -> list[str]:
        """What the run leaves out, for the log."""
        notes = self.external_notes()
        left_out = [s.sample for s in self.sample_list if s.pretrain and not s.has_cds]
        if left_out and any(s["source"] == "cds" for s in self.corpora.values()):
            notes.append(
                f"CDS corpora: left out {', '.join(left_out)} (format fasta without "
                "annotate: no CDS; only genome corpora use them)"
            )
        return notes

    # ---- acquisition, CDS, genome, splits

    @staticmethod
    def genome_dir(sample: str) -> str:
        return f"resources/genomes/{sample}"

    def changed_sources(self) -> list[ChangedSource]:
        """Every local source (genome or annotation) whose content differs from what its
        sample's provenance.json recorded while its modification time is not newer than
        that record (replaced by `cp -p`, `rsync -t` or `tar x`), so that Snakemake, which
        compares modification times, would keep the old file's results. Size and mtime are
        compared first; the file is read (sha256) only when either changed. Samples not
        verified yet, and files newer than their record (Snakemake reruns those), are
        skipped."""
        out = []
        for s in self.sample_list:
            record_path = Path(self.genome_dir(s.sample)) / PROVENANCE_JSON
            if not record_path.is_file():
                continue
            try:
                files = json.loads(record_path.read_text(encoding="utf-8"))["files"]
            except (OSError, ValueError, KeyError, TypeError):
                continue  # unreadable: verify_sources rewrites it when it reruns
            for which, value, kind in (
                ("primary", s.source, s.source_kind),
                ("annotation", s.annotation, s.annotation_kind),
            ):
                if not value or kind != "local" or not isinstance(files.get(which), dict):
                    continue
                why = _source_change(expand_local(value), files[which], record_path)
                if why:
                    out.append(ChangedSource(s.sample, which, value, record_path, why))
        return out

    def rerun_changed_sources(self) -> list[str]:
        """Make Snakemake rerun the verify_sources job (and so everything built from it) of
        each sample with a changed local source (:meth:`changed_sources`): its
        provenance.json gets a modification time older than the source. Returns one warning
        per file, naming the sample."""
        notes = []
        for c in self.changed_sources():
            stamp = expand_local(c.value).stat().st_mtime - 1
            os.utime(c.record, (stamp, stamp))
            notes.append(
                f"sample {c.sample}: local {c.which} file {c.value} {c.why} since {c.record} "
                "was written, but is not newer than it (copied with cp -p, rsync -t or "
                "unpacked from an archive?); the sample is rebuilt from the new file"
            )
        return notes

    def primary_input(self, wildcards) -> str:
        """The genome file of a sample: a local path used in place, else the download."""
        s = self.samples[wildcards.sample]
        if s.source_kind == "local":
            return str(expand_local(s.source))
        return f"{self.genome_dir(s.sample)}/primary"

    def annotation_input(self, wildcards):
        s = self.samples[wildcards.sample]
        if not s.annotation:
            return []
        if s.annotation_kind == "local":
            return str(expand_local(s.annotation))
        return f"{self.genome_dir(s.sample)}/annotation"

    def source_inputs(self, wildcards) -> dict:
        """Rule verify_sources: a sample's genome file and its annotation ([] without one),
        from one input function (Snakemake calls each input function of each job)."""
        return {
            "primary": self.primary_input(wildcards),
            "annotation": self.annotation_input(wildcards),
        }

    def cds_inputs(self, wildcards) -> dict:
        s = self.samples[wildcards.sample]
        if not s.has_cds:
            raise ConfigError(no_cds_message(s, "do not ask for its CDS"))
        return {
            **self.source_inputs(wildcards),
            "provenance": f"{self.genome_dir(wildcards.sample)}/provenance.json",
        }

    def genome_inputs(self, wildcards) -> dict:
        """The genome file of a sample with a genome sequence (every format but cds_fasta)."""
        s = self.samples[wildcards.sample]
        if not s.has_genome:
            raise ConfigError(
                f"sample {s.sample} has format cds_fasta: it has no genome, so no "
                f"results/genome/{s.sample}/ files; give its genome as gbff, fasta_gff or fasta"
            )
        return {
            "primary": self.primary_input(wildcards),
            "provenance": f"{self.genome_dir(s.sample)}/provenance.json",
        }

    def feature_inputs(self, wildcards) -> dict:
        """A sample's feature table is built from its genome's contig table and its
        annotation (GBFF, GFF3/GTF) or, with gene calling, its CDS table."""
        s = self.samples[wildcards.sample]
        files = self.genome_inputs(wildcards)
        files["contigs"] = f"results/genome/{s.sample}/contigs.tsv"
        if s.annotate:
            files["cds"] = f"results/cds/{s.sample}.tsv"
            del files["primary"]
        elif s.format_kind.annotation:
            files["annotation"] = self.annotation_input(wildcards)
        elif not s.format_kind.has_features:
            del files["primary"]
        return files

    @property
    def split_with_cds(self) -> bool:
        """Whether rule extract_cds also splits the sample it extracts (splits.method
        identity: a sample's split needs only its own CDS), or rule split_cds does it on its
        own (mmseqs: it needs cluster_cds, which needs every sample's CDS first)."""
        return self.config["splits"]["method"] != "mmseqs"

    def split_settings(self) -> dict[str, Any]:
        """What splitting a sample's CDS takes of the config (the `split` param of the rule
        that splits: extract_cds or split_cds)."""
        return {
            "seed": self.config["splits"]["seed"],
            "fractions": self.config["splits"]["fractions"],
            "allow_empty": self.config["cds"]["allow_empty"],
        }

    def sample_args(self, wildcards) -> ShellText:
        """Rules verify_sources and extract_cds (commands of dnalm.genome.jobs): the
        sample's sheet row as flags. A param function, which Snakemake calls when it writes
        the job's command, not for every job of a dry run; not recorded for the params rerun
        trigger, as the Sample object the scripts took before was not."""
        return ShellText.words(jobs.sample_args(self.samples[wildcards.sample]))

    def extract_args(self) -> ShellText:
        """Rule extract_cds: the cds section of the config and, when the job also splits
        the sample (split_with_cds), the split settings, as flags of dnalm.genome.jobs (the
        rule's params `policy` and `split` hold the same settings for the rerun trigger)."""
        split = jobs.split_args(self.split_settings()) if self.split_with_cds else []
        return ShellText.words([*jobs.cds_args(self.config["cds"]), *split])

    def split_cds_input(self, wildcards) -> dict:
        """Rule split_cds (splits.method mmseqs): a sample's CDS and the clusters of all."""
        return {
            "cds": f"results/cds/{wildcards.sample}.fa.gz",
            "clusters": "results/splits/clusters.tsv",
        }

    # ---- tokenizers and corpora

    def pretrain_train_cfg(self, model: str) -> dict:
        """Shared training settings with the model's own `train` entries on top: rule
        pretrain's `params.train`, as the config writes them (the schema's defaults are
        added by the dataclass in the job, so the params, and Snakemake's rerun decisions,
        stay the same when a default is added); a run under analytics.runs keeps every
        checkpoint (keep_checkpoints); checked by :meth:`check_pretrain_settings`."""
        return {
            **self.config["pretrain"]["train"],
            **(self.models[model].get("train") or {}),
            **({"keep_checkpoints": True} if self.keeps_checkpoints(model) else {}),
        }

    def check_pretrain_settings(self) -> None:
        """The values of ``pretrain.train`` and of every model's settings on top of it
        (:meth:`PretrainTrainConfig.check`), at DAG build, so that the job only adds the
        defaults."""
        PretrainTrainConfig.from_dict(self.config["pretrain"]["train"], "pretrain.train")
        for model in self.models:
            where = f"pretrain.models.{model}.train (on top of pretrain.train)"
            PretrainTrainConfig.from_dict(self.pretrain_train_cfg(model), where)

    def pretrain_threads(self) -> int:
        """The pretraining job's threads (CPUs per node): ``pretrain.threads`` CPUs per GPU
        x ``pretrain.gpus`` GPUs per node. SLURM gets them as --cpus-per-task (of the one
        task per node); each training process uses its share (training.run.PretrainRun)."""
        pretrain = self.config["pretrain"]
        return int(pretrain["threads"]) * max(1, int(pretrain["gpus"]))

    def pretrain_resource(self, key: str):
        """One SLURM resource of the pretraining job (None: not requested). One node: `gpu`
        (sbatch --gpus=G), as the other GPU rules, and `nodes` 1, so that SLURM never splits
        the G GPUs of a torchrun --standalone job over two nodes. Several nodes: `nodes`,
        `gres` gpu:G (per node; --gpus would count the whole job), one task per node (`tasks`
        = nodes, with `tasks_per_gpu` 0 so the plugin adds no --ntasks-per-gpu) and `mpi`
        "srun", so the plugin runs the job's script on the first node without wrapping it in
        a 1-node srun: the rule itself starts one torchrun per node with srun
        (dnalm.training.distributed)."""
        nodes = int(self.config["pretrain"].get("nodes", 1))
        gpus = int(self.config["pretrain"]["gpus"])
        if nodes <= 1:
            res = {"gpu": gpus, "nodes": 1}
        else:
            res = {
                "nodes": nodes,
                "gres": f"gpu:{gpus}",
                "tasks": nodes,
                "tasks_per_gpu": 0,
                "mpi": "srun",
            }
        return res.get(key)

    def tokenizer_spec(self, tok: str) -> dict:
        return dict(self.tokenizers[tok])

    # ---- the CDS splits of many samples, read through one input

    def split_files(self, samples, splits=SPLITS) -> dict[str, list[str]]:
        """{split: the per-sample split FASTAs of `samples`}, in the order of `samples`."""
        return {split: [f"results/splits/{s}/{split}.fa.gz" for s in samples] for split in splits}

    def splits_of_every_sample(self) -> dict[str, list[str]]:
        """What gather_splits waits for: every CDS sample's split FASTAs and assignment."""
        samples = sorted(self.cds_samples)
        return {
            **self.split_files(samples),
            "assignment": [f"results/splits/{s}/assignment.tsv" for s in samples],
        }

    def splits_input(self, samples) -> dict[str, str]:
        """The one input by which a job reads the split FASTAs of many CDS samples: the
        gathered assignment table, which gather_splits rewrites whenever any sample's split
        changes or one of its files goes missing. The job gets the FASTAs' paths as a param
        (split_files): listed as inputs, a job over N samples would have 3 x N, and every
        such job would cost the DAG build time in proportion (benchmarks/bench_dag.py)."""
        outside = sorted(set(samples) - set(self.cds_samples))
        if outside:  # not gathered: cannot happen for sheets the plan accepted
            raise ConfigError(f"samples without CDS splits: {', '.join(outside)}")
        return {"splits": SPLITS_TABLE}

    def tokenizer_training_files(self, tok: str) -> list[str]:
        """A trained vocabulary (BPE) learns from the pretraining samples' training split;
        fixed vocabularies need no input."""
        if not TOKENIZER_KINDS.get(self.tokenizers[tok]["type"]).trained:
            return []
        return self.split_files(self.pretrain_samples, ["train"])["train"]

    def tokenizer_training_input(self, wildcards) -> dict:
        if not self.tokenizer_training_files(wildcards.tok):
            return {}
        return self.splits_input(self.pretrain_samples)

    def corpus_targets(self) -> list[str]:
        """results/corpus/{corpus}/{tok}: every tokenizer on the `cds` corpus (as before
        corpora existed, when one is defined), and each model's corpus with its tokenizer."""
        pairs = set()
        if "cds" in self.corpora and self.corpora["cds"]["source"] == "cds":
            pairs |= {("cds", tok) for tok in self.tokenizers}
        pairs |= {(s["corpus"], s["tokenizer"]) for s in self.models.values()}
        return [f"results/corpus/{c}/{t}" for c, t in sorted(pairs)]

    def corpus_build_settings(self, corpus: str) -> dict:
        """corpus settings of one corpus: the shared `corpus` block, its own packing on top."""
        settings = dict(self.config["corpus"])
        if self.corpora[corpus].get("packing"):
            settings["packing"] = self.corpora[corpus]["packing"]
        return settings

    def model_corpus(self, model: str) -> str:
        spec = self.models[model]
        return f"results/corpus/{spec['corpus']}/{spec['tokenizer']}"

    def corpus_split_files(self, corpus: str) -> dict[str, list[str]]:
        """{split: the FASTAs a corpus is made of}: CDS splits, or genome/region windows."""
        spec = self.corpora[corpus]
        if spec["source"] == "cds":
            return self.split_files(spec["samples"])
        if spec["source"] == "task":
            return {split: [f"results/windows/{corpus}/task/{split}.fa.gz"] for split in SPLITS}
        return {
            split: [f"results/windows/{corpus}/{s}/{split}.fa.gz" for s in spec["samples"]]
            for split in SPLITS
        }

    def corpus_split_inputs(self, wildcards) -> dict:
        """What a corpus job waits for: the gathered split table (CDS corpora: splits_input)
        or its window FASTAs."""
        spec = self.corpora[wildcards.corpus]
        if spec["source"] == "cds":
            return self.splits_input(spec["samples"])
        return self.corpus_split_files(wildcards.corpus)

    def window_tasks(self) -> dict[str, bool]:
        """Task tables placed on a genome: task name -> are the ends of its windows inclusive
        (DNA-LLM window names: chr22_10510500_10510799 is 300 bp). tf_binding, and every
        sequence task whose `table` or `test_table` is named by a URL or is a local file
        whose header has chrom, start and end (BED conventions: end exclusive); a task with
        a generated side is left out (its sequences come from models trained downstream)."""
        out = {}
        if "tf_binding" in self.task_names():
            out["tf_binding"] = self.config["tasks"]["tf_binding"]["format"] == "dnallm"
        for task, cfg in sorted(self.sequence_tasks.items()):
            if cfg.get("generated"):
                continue
            for key in ("table", "test_table"):
                value = cfg.get(key)
                if not value:
                    continue
                path = _task_path(value)
                if taskfiles.is_url(value) or (Path(path).is_file() and has_coordinates(path)):
                    out[task] = False
                    break
        return out

    def window_task_inputs(self, corpus: str) -> dict:
        return {f"task_{t}": f"results/tasks/{t}/data.tsv" for t in self.window_tasks()}

    def genome_windows_inputs(self, wildcards) -> dict:
        spec = self.corpora[wildcards.wcorpus]
        files = {
            "genome": f"results/genome/{wildcards.sample}/genome.fa.gz",
            **self.window_task_inputs(wildcards.wcorpus),
        }
        if spec["source"] == "regions":
            files["features"] = f"results/genome/{wildcards.sample}/features.tsv"
        files["beds"] = [_task_path(p) for p in spec["exclude_regions"]]
        return files

    def window_leakage_inputs(self, wildcards) -> dict:
        spec = self.corpora[wildcards.wcorpus]
        files = {
            key: [f"results/windows/{wildcards.wcorpus}/{s}/{name}.tsv" for s in spec["samples"]]
            for key, name in (
                ("summary", "windows"),
                ("contigs", "contigs"),
                ("overlaps", "overlaps"),
            )
        }
        files["beds"] = [_task_path(p) for p in spec["exclude_regions"]]
        return {**files, **self.window_task_inputs(wildcards.wcorpus)}

    def task_corpus_input(self, wildcards) -> str:
        """The task table a task corpus cuts its windows from."""
        return f"results/tasks/{self.corpora[wildcards.tcorpus]['task']}/data.tsv"

    # ---- tasks

    @cached_property
    def task_files(self) -> dict[str, taskfiles.TaskFile]:
        """The task and BED files the config gives as URLs, by their folder id
        (download.smk's download_task_file saves each one)."""
        return {**taskfiles.collect(self.config), **self.suite_task_files}

    def task_file(self, wildcards) -> taskfiles.TaskFile:
        return self.task_files[wildcards.taskfile]

    def tf_binding_inputs(self, wildcards) -> dict:
        cfg = self.config["tasks"]["tf_binding"]
        files = {"sequences": _task_path(cfg["sequences"])}
        for key in ("scores", "genome"):
            if cfg.get(key):
                files[key] = _task_path(cfg[key])
        return files

    def sequence_task_inputs(self, wildcards) -> dict:
        cfg = self.sequence_tasks[wildcards.task]
        files = {}
        gen = self.generated_task(wildcards.task)
        if gen is not None:
            files["generated"] = f"results/generate/{gen['model']}/{gen['set']}.fa.gz"
            files["prompts"] = self.generate_splits(gen["model"])["test"]
        for key in ("table", "test_table"):
            if cfg.get(key):
                files[key] = _task_path(cfg[key])
        for key in ("fasta_by_class", "test_fasta_by_class"):
            for label, path in (cfg.get(key) or {}).items():
                files[f"{key}__{label}"] = _task_path(path)
        return files

    def task_names(self) -> list[str]:
        tasks = self.config["tasks"]
        names = []
        if tasks["species_fragments"]["enabled"] and self.species_samples:
            names.append("species_fragments")
        if tasks["tf_binding"].get("sequences"):
            names.append("tf_binding")
        return names + sorted(self.sequence_tasks) + sorted(self.suite_tasks)

    def check_species_task(self, where: str) -> None:
        """`where` asks for the species task: when no sample of the sheet has species_task
        true (so the task is not built), blame the sheet's column, not `where`."""
        if self.config["tasks"]["species_fragments"]["enabled"] and not self.species_samples:
            raise SampleSheetError(
                f"{where} asks for the species task species_fragments, but no sample in "
                f"{self.samples.sheet} has species_task: true (column species_task); set it to "
                "true for samples of at least 2 species that have CDS, or remove "
                "species_fragments from this setting"
            )

    def task_kind(self, task: str) -> str:
        """The task's kind (dnalm.kinds.tasks.TASK_KINDS), from the config alone."""
        if task in self.suite_tasks:
            return BUILTIN_TASKS.get("suites").kind
        return task_kind_of(task, self.sequence_tasks)

    # ---- fine-tuning and baselines

    def run_tasks(self, run: str) -> list[str]:
        """The tasks a fine-tuning run trains on (its `tasks`, else every task)."""
        tasks = self.task_names()
        wanted = self.runs[run].get("tasks")
        if wanted is None:
            return tasks
        unknown = sorted(set(wanted) - set(tasks))
        if "species_fragments" in unknown:
            self.check_species_task(f"finetune.runs.{run}.tasks")
        if unknown:
            raise ConfigError(
                f"finetune.runs.{run}.tasks: {unknown} are not tasks of this configuration "
                f"(tasks: {', '.join(tasks) or 'none'})"
            )
        return list(wanted)

    def task_runs(self, task: str) -> list[str]:
        """Every result folder name under results/finetune/{task}: fine-tuning runs and
        baselines that apply to the task."""
        baselines = self.config["baselines"]
        names = [r for r in sorted(self.runs) if task in self.run_tasks(r)]
        if baselines["onehot_cnn"]["enabled"]:
            names += self.cnn_task_runs(task)
        if baselines["kmer"]["enabled"] and TASK_KINDS.get(self.task_kind(task)).kmer_baseline:
            names += [f"kmer{k}" for k in baselines["kmer"]["k"]]
        return names

    def cnn_seed_tasks(self) -> list[str] | None:
        """baselines.onehot_cnn.seed_tasks, checked: the tasks the CNN's seed replicates
        after the first train on (None: every task). ConfigError naming an unknown task."""
        only = self.config["baselines"]["onehot_cnn"]["seed_tasks"]
        if only is None:
            return None
        tasks = self.task_names()
        unknown = sorted(set(only) - set(tasks))
        if unknown:
            raise ConfigError(
                f"baselines.onehot_cnn.seed_tasks: {unknown} are not tasks of this "
                f"configuration (tasks: {', '.join(tasks) or 'none'})"
            )
        return list(only)

    def cnn_task_runs(self, task: str) -> list[str]:
        """The CNN's result folders on `task`: every seed replicate, or the first alone where
        baselines.onehot_cnn.seed_tasks leaves the task out."""
        only = self.cnn_seed_tasks()
        if only is None or task in only:
            return list(self.cnn_runs)
        return list(self.cnn_runs)[:1]

    def finetune_settings(self, run: str, task: str) -> dict:
        """Shared fine-tuning settings, then the task's, then the run's own."""
        spec = self.runs[run]
        finetune = self.config["finetune"]
        merged = {
            **finetune["train"],
            **(finetune["per_task"].get(task) or {}),
            **(spec.get("train") or {}),
        }
        for key in ("regime", "freeze_layers", "random_init", "pooling"):
            if key in spec:
                merged[key] = spec[key]
        return merged

    def cnn_settings(self, task: str, name: str = "onehot_cnn") -> dict:
        """The CNN's settings on `task`; a seed replicate's (`name`) with its seed."""
        cnn = self.config["baselines"]["onehot_cnn"]
        settings = {**cnn["train"], **(cnn["per_task"].get(task) or {})}
        if self.cnn_runs.get(name) is not None:
            settings["seed"] = self.cnn_runs[name]
        return settings

    @staticmethod
    def run_dir(stage: str, name: str, task: str | None = None) -> str:
        """The folder of one run, the one place its path is built; scripts get it as a param
        (model_dir, out_dir) and never derive it from a file's parent. Stage "pretrain": the
        model folder of pretrain.models entry `name` (results/models/{name}); stage
        "finetune": run `name` on `task` (results/finetune/{task}/{name}), whose fine-tuned
        model folder is model/ inside it."""
        if stage == "pretrain":
            return f"results/models/{name}"
        if stage == "finetune":
            return f"results/finetune/{task}/{name}"
        raise ConfigError(f"run_dir: unknown stage {stage!r}")

    def model_files(self, model: str) -> dict:
        folder = self.run_dir("pretrain", model)
        return {
            "config": f"{folder}/config.json",
            "weights": f"{folder}/model.safetensors",
            "run": f"{folder}/run.json",
        }

    def finetune_inputs(self, wildcards) -> dict:
        model = self.runs[wildcards.run]["model"]
        if model in self.external:
            return {
                "provenance": self.external_record(model),
                "task": f"results/tasks/{wildcards.ftask}/data.tsv",
            }
        return {
            **self.model_files(model),
            "tokenizer": f"results/tokenizers/{self.models[model]['tokenizer']}",
            "task": f"results/tasks/{wildcards.ftask}/data.tsv",
        }

    def finetune_results(self, wildcards) -> list[str]:
        return [
            f"results/finetune/{wildcards.ftask}/{run}/metrics.json"
            for run in self.task_runs(wildcards.ftask)
        ]

    # ---- checks

    def gpus(self, stage: str) -> int:
        """The GPUs one job of a single-process stage books (its rules' `gpu` resource): 0
        when the stage's `device` is cpu or mps, else ``finetune.gpus`` (0 or 1, checked by
        :meth:`check_gpus`) for fine-tuning and its kin, else 1. A job that books no GPU gets
        none on a cluster and no GPU slot on a local machine (dnalm.core.gpuslots)."""
        node = self.config
        for key in GPU_DEVICE_KEYS[stage]:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:  # the training sections keep their defaults in the dataclasses
            section = {"finetune": FinetuneTrainConfig, "cnn": CNNTrainConfig}.get(stage)
            node = (
                next(f.default for f in fields(section) if f.name == "device") if section else "cpu"
            )
        device = str(node)
        if device == "cpu" or device.startswith("mps"):
            return 0
        return min(1, int(self.config["finetune"]["gpus"]))

    def check_gpus(self) -> None:
        """finetune.gpus books GPUs for jobs that run in one process: more than one would
        sit idle."""
        gpus = int(self.config["finetune"]["gpus"])
        if gpus > 1:
            raise ConfigError(
                f"finetune.gpus is {gpus}, but fine-tuning, the one-hot CNN, probes, "
                "embeddings, generation, variant effects, attributions and the DNA+text stage "
                "each run in one process on one GPU; set finetune.gpus to 1 (or 0 for jobs "
                "without a GPU). pretrain.gpus sets the GPUs of a pretraining job."
            )

    def check_selection_metrics(self) -> None:
        """Each run's selection_metric is one its task's kind can select by."""
        for run in sorted(self.runs):
            for task in self.run_tasks(run):
                chosen = self.finetune_settings(run, task).get("selection_metric")
                where = (
                    f"selection_metric of finetune.runs.{run} on task {task} (from "
                    f"finetune.train, finetune.per_task.{task} or finetune.runs.{run}.train)"
                )
                try:
                    selection_metric(self.task_kind(task), chosen, where)
                except ValueError as err:
                    raise ConfigError(str(err)) from None

    def check(self) -> None:
        """Call what the rule files call while they are parsed and the run's targets, so
        that every config error of a stage that is on comes out of dnalm.plan.load."""
        self.check_gpus()
        self.check_pretrain_settings()
        check_backend(self.config["tracking"]["backend"])  # its package is installed
        self.check_external_runs()
        self.check_probe_external()
        if self.config["baselines"]["onehot_cnn"]["enabled"]:
            self.cnn_seed_tasks()
        self.probe_metric_files()
        self.check_probe_pooling()  # and the layer probe's models
        self.walk_generated_models()
        self.window_tasks()
        self.reproduce_inputs()
        for task in self.sequence_tasks:  # what rule sequence_task reads of a generated set
            self.generated_task_params(task)
        if self.generate_enabled():  # the Fréchet distance's model (rule generate)
            self.generate_reference()
        if self.genecomp_enabled():  # what the gene-completion rules are parsed with
            for m in self.genecomp_models():
                self.genecomp_unit(m)
        if self.robustness_enabled():
            for m in self.robustness_models():
                self.robustness_k(m)
                self.robustness_test_files(m)
        self.check_analytics()
        self.targets()
        self.check_selection_metrics()


def wildcards(**values: str) -> SimpleNamespace:
    """Wildcards for calling an input function outside Snakemake (tests, the plan)."""
    return SimpleNamespace(**values)
