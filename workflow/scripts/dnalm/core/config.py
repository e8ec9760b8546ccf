"""The workflow config's settings sections as dataclasses, one per section.

=======================  ==============================================================
dataclass                config keys
=======================  ==============================================================
PretrainTrainConfig      ``pretrain.train`` and a model's own ``pretrain.models.*.train``
FinetuneTrainConfig      ``finetune.train``, ``finetune.per_task.*``, a run's own
                         ``finetune.runs.*.train``, plus the run keys ``regime``,
                         ``freeze_layers``, ``random_init``, ``pooling`` (one run's settings)
CNNTrainConfig           ``baselines.onehot_cnn.train`` and ``baselines.onehot_cnn.per_task.*``
KmerBaselineConfig       ``baselines.kmer``
ProbeConfig, UMAPConfig  ``probe`` and ``probe.umap``
=======================  ==============================================================

workflow/schemas/config.schema.yaml lists the same keys with the same defaults (and types),
so a typo fails when the DAG is built; tests/test_core_config.py checks that schema and
dataclasses agree. The fields that :func:`dnalm.training.fit.fit` takes carry
``metadata={"fit": True}`` (:meth:`Section.fit_settings`).

Torch-free: common.smk imports this module at DAG build (:func:`check_config_names`,
:func:`check_config_keys`).
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterator, Mapping
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
class PretrainTrainConfig(Section):
    """Pretraining settings (``pretrain.train``; a model's ``train`` overrides them)."""

    label: ClassVar[str] = "training"

    seed: int = 0
    micro_batch_size: int = 16  # windows per process per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    max_steps: int = 2000
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # final lr = lr * min_lr_ratio
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float | None = 1.0  # max global grad norm; 0 or None: off
    eval_interval: int = 100  # steps between validations (and checkpoints by default)
    checkpoint_interval: int | None = None  # steps between checkpoints (None: every evaluation)
    eval_batches: int | None = 50  # validation batches per evaluation (None: the whole split)
    eval_batch_size: int | None = None  # None: micro_batch_size
    log_interval: int = 10  # steps between rows of curves.csv
    patience: int | None = 10  # evaluations without improvement before stopping (None: never)
    min_delta: float = 0.0  # improvement smaller than this does not count
    mask_prob: float = 0.15  # mlm only
    mask_span: int | None = None  # mlm only; None: k for overlapping k-mers, else 1
    lowercase_loss_weight: float = 1.0  # loss weight of soft-masked (lower-case) targets
    baseline_order: int | None = None  # None: 0, 1, 2 for codon tokens, else the largest affordable
    baseline_alpha: float | None = None  # None: 0.01 for codon tokens, else 1 (add-one)
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | bf16 | fp32
    compile: bool = False  # torch.compile the model
    threads: int | None = None  # torch CPU threads (None: torch's default)
    test_eval: bool = True  # score the test split and the baseline at the end

    def check(self) -> None:
        for key in ("micro_batch_size", "grad_accum", "max_steps", "eval_interval", "log_interval"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"training setting {key} must be a positive integer, got {value}")
        ci = self.checkpoint_interval
        if ci is not None and (isinstance(ci, bool) or not isinstance(ci, int) or ci < 1):
            raise ConfigError(
                f"pretrain.train.checkpoint_interval must be a positive integer or null (every "
                f"evaluation), got {ci!r}"
            )
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        w = self.lowercase_loss_weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= w <= 1.0:
            raise ConfigError(
                f"pretrain.train.lowercase_loss_weight must be a number in [0, 1], got {w!r}"
            )


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
    pooling: str = "mean"
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


# ----------------------------------------------------------------------------- DAG-build checks

#: Sections of the config and their dataclass, for :func:`check_config_keys`.
SECTION_CLASSES: dict[str, type[Section]] = {
    "pretrain.train": PretrainTrainConfig,
    "finetune.train": FinetuneTrainConfig,
    "baselines.onehot_cnn.train": CNNTrainConfig,
    "baselines.kmer": KmerBaselineConfig,
    "probe": ProbeConfig,
    "probe.umap": UMAPConfig,
}


def section_keys(cls: type[Section], *, run: bool = False) -> list[str]:
    """Field names of a section; for FinetuneTrainConfig the `train` keys (run=False) or the
    run-entry keys (run=True)."""
    return [f.name for f in fields(cls) if bool(f.metadata.get("run")) == run]  # type: ignore[arg-type]


def _dicts(parent: Any, key: str) -> Any:
    value = parent.get(key) if isinstance(parent, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def training_settings(config: Mapping[str, Any]) -> Iterator[tuple[str, Mapping, str, type]]:
    """(config path, parent mapping, key, dataclass) of every settings mapping of the
    training sections present in `config`: shared ``train``, per-model, per-run and per-task."""
    pretrain = _dicts(config, "pretrain")
    yield "pretrain.train", pretrain, "train", PretrainTrainConfig
    for name, spec in _dicts(pretrain, "models").items():
        yield f"pretrain.models.{name}.train", spec, "train", PretrainTrainConfig
    for name, sweep in _dicts(config, "sweeps").items():
        yield f"sweeps.{name}.train", sweep, "train", PretrainTrainConfig
    finetune = _dicts(config, "finetune")
    yield "finetune.train", finetune, "train", FinetuneTrainConfig
    per_task = _dicts(finetune, "per_task")
    for task in per_task:
        yield f"finetune.per_task.{task}", per_task, task, FinetuneTrainConfig
    for name, run in _dicts(finetune, "runs").items():
        yield f"finetune.runs.{name}.train", run, "train", FinetuneTrainConfig
    cnn = _dicts(_dicts(config, "baselines"), "onehot_cnn")
    yield "baselines.onehot_cnn.train", cnn, "train", CNNTrainConfig
    per_task = _dicts(cnn, "per_task")
    for task in per_task:
        yield f"baselines.onehot_cnn.per_task.{task}", per_task, task, CNNTrainConfig


def check_config_keys(config: Mapping[str, Any]) -> None:
    """Before the schema: unknown keys of the training sections, `probe` and
    `baselines.kmer`, as one ConfigError naming the config path, the key and the valid keys
    (the schema's message for the same mistake is harder to read). The architectures,
    presets and losses of ``pretrain.models`` are checked from their registry
    (:func:`dnalm.kinds.archs.check_presets`, :func:`dnalm.kinds.losses.check_losses`)."""
    for path, parent, key, cls in training_settings(config):
        settings = parent.get(key) if isinstance(parent, Mapping) else None
        if not isinstance(settings, Mapping):
            continue  # missing, or not a mapping: the schema says so
        known = section_keys(cls)
        unknown = sorted((k for k in settings if k not in known), key=str)
        run_keys = section_keys(cls, run=True)
        for k in unknown:
            if k in run_keys:
                raise ConfigError(
                    f"{path}: {k!r} is a setting of the run entry, not of `train`; set it "
                    f"as finetune.runs.<run>.{k}"
                )
        if unknown:
            raise ConfigError(f"{path}: {unknown_keys_message(unknown, known)}")
    for path in ("baselines.kmer", "probe", "probe.umap"):
        node = _get(config, tuple(path.split(".")))
        if isinstance(node, Mapping):
            known = section_keys(SECTION_CLASSES[path])
            unknown = sorted((k for k in node if k not in known), key=str)
            if unknown:
                raise ConfigError(f"{path}: {unknown_keys_message(unknown, known)}")


def corpus_packing(config: Mapping[str, Any], corpus: str | None) -> str:
    """The packing of corpus `corpus` (None: cds): its own `packing`, else corpus.packing."""
    own = _dicts(_dicts(config, "corpora"), corpus or "cds").get("packing")
    return own or _dicts(config, "corpus").get("packing", "packed")


def _get(config: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = config
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def user_training_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Copies of the training settings as the user wrote them, by config path (before the
    schema's validation fills in every default)."""
    return {
        path: copy.deepcopy(parent[key])
        for path, parent, key, _ in training_settings(config)
        if isinstance(parent, Mapping) and key in parent
    }


def restore_training_settings(config: dict[str, Any], saved: Mapping[str, Any]) -> None:
    """Put back the user's own training settings after the schema filled in its defaults, so
    a rule's params hold only what the config sets (the dataclasses add the same defaults;
    params that grew by every default would make Snakemake rerun finished jobs)."""
    for path, parent, key, _ in list(training_settings(config)):
        if isinstance(parent, dict) and key in parent:
            parent[key] = copy.deepcopy(saved.get(path, {}))


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
