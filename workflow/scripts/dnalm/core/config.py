"""The workflow config's settings sections as dataclasses, one per section.

=======================  ==============================================================
dataclass                config keys
=======================  ==============================================================
FinetuneTrainConfig      ``finetune.train``, ``finetune.per_task.*``, a run's own
                         ``finetune.runs.*.train``, plus the run keys ``regime``,
                         ``freeze_layers``, ``random_init``, ``pooling`` (one run's settings)
CNNTrainConfig           ``baselines.onehot_cnn.train`` and ``baselines.onehot_cnn.per_task.*``
KmerBaselineConfig       ``baselines.kmer``
ProbeConfig, UMAPConfig  ``probe`` and ``probe.umap``
=======================  ==============================================================

Pretraining's settings (``pretrain.train``) live beside the run they configure
(:class:`dnalm.training.run.PretrainTrainConfig`, a :class:`Section` too), and the table of
every section by config path with the DAG-build key checks in :mod:`dnalm.plan.sections`.

workflow/schemas/config.schema.yaml lists the same keys with the same defaults (and types),
so a typo fails when the DAG is built; tests/test_core_config.py checks that schema and
dataclasses agree. The fields that :func:`dnalm.training.fit.fit` takes carry
``metadata={"fit": True}`` (:meth:`Section.fit_settings`).

Torch-free: the plan imports this module at DAG build (:func:`check_config_names`,
:func:`drop_null_entries`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from dnalm.core.errors import ConfigError
from dnalm.core.io import read_yaml

#: the config schema (names of path-like entries are checked against its patterns)
CONFIG_SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schemas" / "config.schema.yaml"

REGIMES = ("frozen", "partial", "full", "lora")
TOO_LONG = ("truncate", "error")
PRECISIONS = ("auto", "bf16", "fp32")
LR_SCHEDULES = ("constant", "cosine")


def check_lr_schedule(schedule: str) -> str:
    """`schedule` when it is one of LR_SCHEDULES, else a ConfigError."""
    if schedule not in LR_SCHEDULES:
        raise ConfigError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")
    return schedule


def _fit(default: Any) -> Any:
    """A field that :func:`dnalm.training.fit.fit` takes as a keyword argument."""
    return field(default=default, metadata={"fit": True})


def _run(default: Any) -> Any:
    """A fine-tuning field set on the run entry (``finetune.runs.<run>``), not in `train`."""
    return field(default=default, metadata={"run": True})


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_keys_message(keys: list[str], known: list[str], label: str = "") -> str:
    """'unknown <label> setting 'x' (did you mean 'y'?); known: ...' for `keys` not in `known`."""
    label = f"{label} " if label else ""
    if len(keys) == 1:
        what = f"unknown {label}setting {keys[0]!r}{_did_you_mean(keys[0], known)}"
    else:
        what = f"unknown {label}settings {keys}"
    return f"{what}; known: {', '.join(sorted(known))}"


class Section:
    """What every section dataclass shares: :meth:`from_dict` refuses unknown keys (naming
    them) and runs the section's checks; :meth:`as_dict`; :meth:`fit_settings`."""

    #: what the settings are called in messages ("unknown <label> setting 'x'")
    label: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, where: str | None = None):
        """The section from a config mapping (missing keys take the defaults). `where`, a
        config path such as ``pretrain.train``, prefixes error messages."""
        d = dict(d or {})
        known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(d) - set(known), key=str)
        try:
            if unknown:
                raise ConfigError(unknown_keys_message(unknown, known, cls.label))
            cfg = cls(**d)
            cfg.check()
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}" if where else str(err)) from None
        return cfg

    def check(self) -> None:
        """Raise ConfigError for a value the section cannot use (beyond the schema's types)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def fit_settings(self) -> dict[str, Any]:
        """The :func:`dnalm.training.fit.fit` keyword arguments among the fields."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("fit")}  # type: ignore[arg-type]


def fit_settings(cfg: Section) -> dict[str, Any]:
    """The :func:`dnalm.training.fit.fit` keyword arguments a run's config carries."""
    return cfg.fit_settings()


@dataclass
class FinetuneTrainConfig(Section):
    """Settings of one fine-tuning run: ``finetune.train``, then ``finetune.per_task.<task>``,
    then the run's own ``train``, plus the run entry's `regime`, `freeze_layers`,
    `random_init` and `pooling` (fields with ``metadata["run"]``).

    Head sizes default to DNA-LLM's regression head (128 channels, kernel 11, dropout 0.2)."""

    label: ClassVar[str] = "fine-tuning"

    regime: str = _run("frozen")
    freeze_layers: int = _run(1)  # partial: embeddings + this many first blocks frozen
    random_init: bool = _run(False)
    pooling: str = _run("mean")  # classification heads: mean | cls | last | max
    head_hidden: int = 128
    head_kernel: int = 11
    head_dropout: float = 0.2
    head_standardize: bool = True  # sequence-level heads: standardise pooled features
    head_norm: str = "layernorm"  # per-base head: layernorm (DNA-LLM) | standardize
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    batch_size: int = 32
    eval_batch_size: int = 64
    lr: float = _fit(1e-3)
    warmup_steps: int = _fit(50)  # linear warm-up of the learning rate (0 = off)
    lr_schedule: str = _fit("cosine")  # after warm-up: cosine | constant
    min_lr_ratio: float = _fit(0.1)  # cosine: final lr = lr * min_lr_ratio
    weight_decay: float = _fit(0.01)
    max_epochs: int = _fit(10)
    patience: int = _fit(3)
    selection_metric: str | None = None  # validation metric of the best checkpoint (None: kind's)
    eval_every: int | None = _fit(None)  # optimizer steps between validations; None = per epoch
    max_steps: int | None = _fit(None)
    grad_clip: float | None = _fit(1.0)
    max_shift: int = 10  # per-base tasks; 0 = off
    reverse_complement: bool = False
    rc_average: bool = False  # test predictions: mean over the strand and its reverse complement
    max_train_examples: int | None = None  # seeded subsample of train (CI-sized runs)
    max_validation_examples: int | None = None  # seeded subsample of validation (ditto)
    too_long: str = "truncate"
    seed: int = _fit(0)
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None

    def check(self) -> None:
        if self.regime not in REGIMES:
            raise ConfigError(f"regime must be one of {REGIMES}, got {self.regime!r}")
        check_lr_schedule(self.lr_schedule)
        if self.too_long not in TOO_LONG:
            raise ConfigError(f"too_long must be one of {TOO_LONG}, got {self.too_long!r}")
        if self.freeze_layers < 0:
            raise ConfigError(f"freeze_layers must be >= 0, got {self.freeze_layers}")
        if self.head_norm not in ("layernorm", "standardize"):
            raise ConfigError(f"head_norm must be layernorm or standardize, got {self.head_norm!r}")


@dataclass
class CNNTrainConfig(Section):
    """Settings of the one-hot CNN baseline (``baselines.onehot_cnn.train``, then
    ``per_task.<task>``). Defaults: the DNA-LLM architecture (128 channels, kernel 11,
    dropout 0.2) with a learning rate that converges in a few epochs on CPU; DNA-LLM used
    lr 1e-4, weight decay 1e-4, batch 64, patience 10, up to 100 epochs, selection on
    validation loss."""

    label: ClassVar[str] = "one-hot CNN"

    channels: int = 128
    kernel_size: int = 11
    dropout: float = 0.2
    pooling: str = "max"  # classification / sequence regression only
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = _fit(2e-3)
    weight_decay: float = _fit(0.01)
    max_epochs: int = _fit(30)
    patience: int = _fit(5)
    eval_every: int | None = _fit(None)  # steps; None = once per epoch
    max_steps: int | None = _fit(None)
    grad_clip: float | None = _fit(1.0)
    max_shift: int = 10  # per-base regression only; 0 = off
    reverse_complement: bool = False
    seed: int = _fit(0)
    device: str = "cpu"
    warmup_steps: int = _fit(0)
    lr_schedule: str = _fit("cosine")  # after warm-up: cosine | constant
    min_lr_ratio: float = _fit(0.1)
    max_train_examples: int | None = None  # seeded subsample of train (CI-sized runs)
    max_validation_examples: int | None = None  # seeded subsample of validation (ditto)


@dataclass
class KmerBaselineConfig(Section):
    """The k-mer frequency baselines (``baselines.kmer``): one per k."""

    label: ClassVar[str] = "k-mer baseline"

    enabled: bool = True
    k: list[int] = field(default_factory=lambda: [4])


@dataclass
class UMAPConfig(Section):
    """``probe.umap``: the post's settings (15 neighbours, cosine metric, fixed seed)."""

    label: ClassVar[str] = "UMAP"

    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    seed: int = 42
    max_points: int | None = 3000  # seeded subset of test points per map (None: all)


@dataclass
class ProbeConfig(Section):
    """``probe``: embeddings, logistic-regression probes and UMAPs of the probe task."""

    label: ClassVar[str] = "probe"

    enabled: bool = True
    task: str = "species_fragments"
    models: list[str] | None = None  # None: every model under pretrain.models
    random_init: bool | list[str] = True  # true: every embedded model; or a list of them
    finetuned: list[str] = field(default_factory=list)
    external: dict[str, dict[str, Any]] = field(default_factory=dict)
    layer: int = -1
    pooling: str | list[str] = "mean"  # a list: the layer-wise probe's; the first is the main
    layers: str | list[int] = "last"  # the layer-wise probe: last | all | [i, j, ...]
    layer_models: list[str] | None = None  # None: every embedded model (not random-init)
    rc_average: bool = False  # mean of the sequence's and its reverse complement's vectors
    batch_size: int = 64
    kmer_k: int = 4
    cv_folds: int = 5
    kinds: list[str] = field(default_factory=lambda: ["logreg"])  # probe_kinds.PROBE_KINDS
    umap: UMAPConfig = field(default_factory=UMAPConfig)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, where: str | None = None) -> ProbeConfig:
        d = dict(d or {})
        if "umap" in d and not isinstance(d["umap"], UMAPConfig):
            d["umap"] = UMAPConfig.from_dict(d["umap"], f"{where or 'probe'}.umap")
        return super().from_dict(d, where)

    @property
    def poolings(self) -> list[str]:
        """`pooling` as a list (one method: a list of one)."""
        return [self.pooling] if isinstance(self.pooling, str) else list(self.pooling)

    @property
    def main_pooling(self) -> str:
        """The pooling of the main embedding (probe table, UMAP): the first of `pooling`."""
        return self.poolings[0]

    @property
    def layer_wise(self) -> bool:
        """Whether the layer-wise probe runs: layers other than the last, or several
        poolings."""
        return self.layers != "last" or len(self.poolings) > 1


# ----------------------------------------------------------------------------- DAG-build checks


def section_keys(cls: type[Section], *, run: bool = False) -> list[str]:
    """Field names of a section; for FinetuneTrainConfig the `train` keys (run=False) or the
    run-entry keys (run=True)."""
    return [f.name for f in fields(cls) if bool(f.metadata.get("run")) == run]  # type: ignore[arg-type]


def submapping(parent: Any, key: str) -> Any:
    """`parent[key]` when both are mappings, else an empty mapping (a section left out, or
    not a mapping: the schema says so)."""
    value = parent.get(key) if isinstance(parent, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def corpus_packing(config: Mapping[str, Any], corpus: str | None) -> str:
    """The packing of corpus `corpus` (None: cds): its own `packing`, else corpus.packing."""
    own = submapping(submapping(config, "corpora"), corpus or "cds").get("packing")
    return own or submapping(config, "corpus").get("packing", "packed")


#: Config keys whose entries' names become file or folder names (results/{kind}/{name}/...).
NAMED_CONFIG_KEYS = (
    ("tokenizers",),
    ("corpora",),
    ("tasks", "sequence_tasks"),
    ("pretrain", "models"),
    ("finetune", "runs"),
    ("probe", "external"),
    ("models", "external"),
    ("sweeps",),
    ("suites",),
)


ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_config_names(config: dict, schema_path: Path = CONFIG_SCHEMA_PATH) -> None:
    """Refuse config entries whose names would become unsafe paths (``../x``, ``a/b``):
    every name in :data:`NAMED_CONFIG_KEYS` must match its `propertyNames` pattern in the
    config schema (the sample-ID pattern). Raises ConfigError naming the key and the name."""
    schema = read_yaml(schema_path)
    for keys in NAMED_CONFIG_KEYS:
        node, sub = config, schema
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
            sub = sub["properties"][key]
        if not isinstance(node, dict):
            continue
        pattern = re.compile(sub["propertyNames"]["pattern"])
        for name in node:
            if isinstance(name, str) and pattern.match(name):
                continue
            dotted = ".".join(keys)
            if isinstance(name, str) and ID_RE.match(name):
                raise ConfigError(
                    f"config key {dotted}: the name {name!r} is reserved (pattern "
                    f"{pattern.pattern}); choose another name"
                )
            raise ConfigError(
                f"config key {dotted}: the name {name!r} is not allowed: names become file "
                "and folder names under results/, so use letters, digits, '_', '.', '-' only, "
                "starting with a letter or digit (no '/', no '..')"
            )


def drop_null_entries(config: dict) -> list[str]:
    """Remove the entries set to null under the named sections (:data:`NAMED_CONFIG_KEYS`:
    tokenizers, corpora, sequence tasks, models, runs, external probe models, sweeps), so
    that a second config file (``--configfile``) can remove an entry of the first, which
    Snakemake's merge cannot otherwise do (``pretrain: {models: {gpt_codon: null}}``).
    Returns the dotted names removed."""
    removed = []
    for keys in NAMED_CONFIG_KEYS:
        node = config
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        for name in [n for n, v in node.items() if v is None]:
            del node[name]
            removed.append(".".join((*keys, str(name))))
    return removed


#: the folder of the run-tracking backends' files (the `tracking` section; dnalm.training.track)
TRACKING_DIR = "results/tracking"


def tracking_spec(config: Mapping[str, Any], run: str) -> dict[str, str] | None:
    """The tracker settings of the run named `run` (``pretrain/<model>``,
    ``finetune/<task>/<run>``: its log file's name) from the workflow config's ``tracking``
    section, whose defaults the plan filled in; None when ``tracking.backend`` is none. The
    rule scripts read it from the config, not from a rule's params, so that turning tracking
    on or off never reruns a finished run (dnalm.training.track opens it)."""
    section = config.get("tracking")
    if not isinstance(section, Mapping) or "backend" not in section:
        raise ConfigError(
            "the config has no tracking.backend; dnalm.plan.load fills in the schema's "
            "defaults (run the job through the workflow, or load the config with it)"
        )
    if section["backend"] == "none":
        return None
    return {
        "backend": section["backend"],
        "experiment": section["experiment"],
        "dir": TRACKING_DIR,
        "run": run,
    }
