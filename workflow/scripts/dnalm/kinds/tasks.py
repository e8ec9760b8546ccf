"""Task kinds and built-in tasks: what each value of a task's ``kind`` is, and which tasks the
workflow builds itself, declared once.

A :class:`TaskKind` (classification, regression, per_base_regression) says what a task table
of that kind holds and how it is scored: the column with the values to predict (``label``
per sequence, ``targets`` per base), whether those are class labels, the head's outputs,
the test metrics (main metric first), the metric used to select checkpoints, the
sentence describing the main metric in comparison tables, and which baselines and figures
apply. The task writer (:mod:`dnalm.tasks.common`), the fine-tuning data checks, the
metrics tables and comparison, the figures and the workflow's target lists read these
fields instead of comparing kind names.

A :class:`BuiltinTask` is one task family of the ``tasks`` config section: its kind (fixed,
or from the config for user sequence tasks) and the function in :mod:`dnalm.tasks` that
builds it. The config schema's enum of sequence-task kinds is checked against this registry
by tests/test_kinds.py; tests/test_layout.py checks that every kind is built by a task
family and every builder exists.

Torch-free and pandas-free: common.smk reads it at DAG build.
"""

from __future__ import annotations

from dataclasses import dataclass

from dnalm.kinds import Kind, Registry


@dataclass(frozen=True)
class TaskKind(Kind):
    """One task kind (see the module docstring)."""

    #: one target per base (a ``targets`` column of comma-separated numbers) instead of one
    #: per sequence (a ``label`` column)
    per_base: bool
    #: the values are class labels (strings; one output per class), else real numbers (one
    #: output)
    classes: bool
    #: test metrics of a run, main metric first (metrics.json and the comparison table)
    metrics: tuple[str, ...]
    #: validation metric that selects the checkpoint (higher is better)
    selection_metric: str
    #: what the main metric is computed over, for comparison tables
    metric_text: str
    #: a user sequence task (tasks.sequence_tasks.*.kind) may be of this kind
    sequence_task: bool = False
    #: the k-mer count baselines (one vector per sequence) apply
    kmer_baseline: bool = True
    #: the metrics (higher is better) a run may select its checkpoint by instead
    #: (``finetune.train.selection_metric``); the kind's own selection_metric is one of them
    selectable: tuple[str, ...] = ()

    @property
    def value_column(self) -> str:
        """The task table's column with the values to predict."""
        return "targets" if self.per_base else "label"

    @property
    def scalar(self) -> bool:
        """One real value per sequence (sequence regression)."""
        return not self.classes and not self.per_base

    @property
    def main_metric(self) -> str:
        return self.metrics[0]

    def n_outputs(self, n_classes: int) -> int:
        """Outputs of the head (per sequence, or per base when per_base)."""
        return n_classes if self.classes else 1


TASK_KINDS: Registry[TaskKind] = Registry("task kind")

TASK_KINDS.register(
    TaskKind(
        name="classification",
        summary="one class label per sequence",
        per_base=False,
        classes=True,
        metrics=("accuracy", "macro_f1", "mcc", "chance_majority", "chance_uniform"),
        selection_metric="macro_f1",
        metric_text="accuracy over test sequences",
        sequence_task=True,
        selectable=("macro_f1", "accuracy", "mcc"),
    )
)
TASK_KINDS.register(
    TaskKind(
        name="regression",
        summary="one real value per sequence",
        per_base=False,
        classes=False,
        metrics=("pearson_r", "spearman_r", "mse"),
        selection_metric="pearson_r",
        metric_text="pearson_r over test sequences",
        sequence_task=True,
        selectable=("pearson_r", "spearman_r"),
    )
)
TASK_KINDS.register(
    TaskKind(
        name="per_base_regression",
        summary="one real value per base (e.g. TF binding scores)",
        per_base=True,
        classes=False,
        metrics=("pearson_r", "spearman_r", "mse", "auprc_bound", "bound_fraction"),
        selection_metric="pearson_r",
        metric_text="pearson_r over all flattened test positions (items: windows)",
        kmer_baseline=False,
        selectable=("pearson_r", "spearman_r"),
    )
)

#: the task kinds, in declaration order
KINDS: tuple[str, ...] = TASK_KINDS.names()
#: the kinds a user sequence task may have
SEQUENCE_TASK_KINDS: tuple[str, ...] = tuple(k.name for k in TASK_KINDS if k.sequence_task)


def selection_metric(kind: str, chosen: str | None, where: str = "selection_metric") -> str:
    """The validation metric that selects a run's checkpoint: `chosen`
    (``finetune.train.selection_metric``), else the kind's own. ValueError naming `where`
    when the kind cannot select by `chosen`."""
    desc = TASK_KINDS.get(kind)
    if chosen is None:
        return desc.selection_metric
    if chosen not in desc.selectable:
        raise ValueError(
            f"{where}: {chosen!r} is not a validation metric a {kind} task selects its best "
            f"checkpoint by; use one of {', '.join(desc.selectable)} (or null: "
            f"{desc.selection_metric})"
        )
    return chosen


def infer_kind(columns) -> str:
    """The kind of a task table without a recorded kind: the first per-base kind when it has
    that kind's value column (``targets``), else the first kind (classification)."""
    for kind in TASK_KINDS:
        if kind.per_base and kind.value_column in columns:
            return kind.name
    return KINDS[0]


@dataclass(frozen=True)
class BuiltinTask(Kind):
    """A task family the workflow builds (a key of the config's ``tasks`` section)."""

    #: its task kind; None: each task of the family sets it (``kind``, sequence tasks)
    kind: str | None
    #: ``module:function`` under dnalm.tasks that builds a task of this family
    builder: str
    #: the family is one task of this name (results/tasks/<name>); else its tasks are named
    #: by the user
    named_task: bool = True


BUILTIN_TASKS: Registry[BuiltinTask] = Registry("built-in task")

BUILTIN_TASKS.register(
    BuiltinTask(
        name="species_fragments",
        summary="species of in-frame fragments of held-out CDS",
        kind="classification",
        builder="species:build_species_fragments",
    )
)
BUILTIN_TASKS.register(
    BuiltinTask(
        name="tf_binding",
        summary="per-base scores of genome windows (e.g. TF binding)",
        kind="per_base_regression",
        builder="tf_binding:build_tf_binding",
    )
)
BUILTIN_TASKS.register(
    BuiltinTask(
        name="sequence_tasks",
        summary="user sequence classification/regression tasks by name",
        kind=None,
        builder="sequence:build_sequence_task",
        named_task=False,
    )
)
BUILTIN_TASKS.register(
    BuiltinTask(
        name="generated",
        summary="a sequence task trained or tested on a causal model's samples",
        kind="classification",
        builder="generated:write_generated_table",
        named_task=False,
    )
)

BUILTIN_TASKS.register(
    BuiltinTask(
        name="suites",
        summary="the tasks of a benchmark suite (the config's `suites` section)",
        kind="classification",
        builder="suites:build_suite_task",
        named_task=False,
    )
)


def task_kind_of(task: str, sequence_tasks) -> str:
    """The kind of task `task` from the config alone: the fixed kind of a built-in task, else
    the `kind` of its entry in `sequence_tasks` (tasks.sequence_tasks)."""
    builtin = BUILTIN_TASKS.get(task) if task in BUILTIN_TASKS else None
    if builtin is not None and builtin.named_task and builtin.kind is not None:
        return builtin.kind
    return sequence_tasks[task]["kind"]
