"""The `corpora` section of the config: what each pretraining corpus is made of (CDS, whole
genomes cut into windows, annotated regions cut into windows, or the sequences of one split
of a task dataset cut into windows) and how its windows are split. Every check that needs
no data runs here, before any job; the contig names of `split.contigs` are checked again
against the genome in the job that cuts the windows.

A corpus spec after :func:`corpus_specs` holds every key with its default filled in:
``source``, ``samples`` and, for genome/regions, ``window``, ``stride``, ``min_length``,
``max_n_fraction``, ``n_runs``, ``min_n_run``, ``both_strands``, ``split`` (``method``,
``block_size``, ``seed``, ``contigs``), ``exclude_tasks``, ``exclude_regions`` and, for
regions, ``features`` and ``upstream``. A task corpus holds ``source``, ``samples`` (empty),
``task``, ``task_splits``, ``window``, ``stride``, ``min_length`` and ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dnalm.core.errors import ConfigError
from dnalm.genome.samples import no_cds_message
from dnalm.kinds.formats import formats_where
from dnalm.kinds.tokenizers import TOKENIZER_KINDS

SOURCES = ("cds", "genome", "regions", "task")
TASK_SPLITS = ("train", "validation", "test")
FEATURES = (
    "promoter",
    "upstream",
    "gene",
    "exon",
    "CDS",
    "five_prime_UTR",
    "three_prime_UTR",
    "intergenic",
)
N_RUNS = ("keep", "split")
SPLIT_METHODS = ("blocks", "contigs")
DEFAULT_CORPORA = {"cds": {"source": "cds"}}

WINDOW_DEFAULTS: dict[str, Any] = {
    "stride": None,  # = window
    "min_length": None,  # = window
    "max_n_fraction": 0.1,
    "n_runs": "keep",
    "min_n_run": 10,
    "both_strands": False,
    "exclude_tasks": True,
    "exclude_regions": [],
}
SPLIT_DEFAULTS: dict[str, Any] = {
    "method": "blocks",
    "block_size": 100_000,
    "seed": 42,
    "contigs": {},
}
KEYS = {
    "cds": {"source", "samples", "packing"},
    "genome": {"source", "samples", "window", "split", "packing", *WINDOW_DEFAULTS},
    "regions": {
        "source", "samples", "window", "split", "features", "upstream", "packing",
        *WINDOW_DEFAULTS,
    },
    "task": {
        "source", "samples", "task", "task_splits", "window", "stride", "min_length", "seed",
        "packing",
    },
}  # fmt: skip
PACKINGS = ("packed", "padded")


def _int(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key}: must be an integer >= {minimum}, got {value!r}")
    return value


def _samples(name: str, spec: Mapping, samples: Mapping[str, Any]) -> list[str]:
    source = spec["source"]
    key = f"corpora.{name}.samples"
    wanted = spec.get("samples")
    if wanted is None:
        chosen = [s for s in samples.values() if s.pretrain]
        if source == "cds":
            chosen = [s for s in chosen if s.has_cds]
        else:
            chosen = [s for s in chosen if s.has_genome]
        if source == "regions":
            chosen = [s for s in chosen if s.has_features]
        names = [s.sample for s in chosen]
    else:
        if not isinstance(wanted, list) or not all(isinstance(s, str) for s in wanted):
            raise ConfigError(f"{key}: must be a list of sample names, got {wanted!r}")
        unknown = [s for s in wanted if s not in samples]
        if unknown:
            raise ConfigError(
                f"{key}: {unknown} are not samples of the sheet (samples: "
                f"{', '.join(sorted(samples))})"
            )
        names = list(dict.fromkeys(wanted))
        for s in names:
            smp = samples[s]
            if source == "cds" and not smp.has_cds:
                raise ConfigError(
                    f"{key}: sample {s!r} has no CDS (format {smp.format!r} without gene "
                    "calling); use a genome corpus for it or give it an annotation"
                )
            if source != "cds" and not smp.has_genome:
                raise ConfigError(
                    f"{key}: sample {s!r} is a {smp.format} sample (coding sequences only, no "
                    f"genome); a {source} corpus needs a genome sequence"
                )
            if source == "regions" and not smp.has_features:
                raise ConfigError(
                    f"{key}: sample {s!r} (format {smp.format!r}) has no annotation; a regions "
                    f"corpus needs features ({', '.join(formats_where(lambda f: f.has_features))}, "
                    "or annotate: pyrodigal)"
                )
    if not names:
        hint = ""
        if source == "cds" and wanted is None:
            no_cds = [s for s in samples.values() if s.pretrain and not s.has_cds]
            hint = "".join(
                f"; {no_cds_message(s, 'use it in a genome corpus only')}" for s in no_cds
            )
        raise ConfigError(
            f"corpora.{name}: no samples (source {source}: pretrain samples"
            + (" with a genome" if source != "cds" else " with CDS")
            + f"); name them under `samples`{hint}"
        )
    return names


def _split(name: str, raw: Any, samples: Sequence[str]) -> dict[str, Any]:
    key = f"corpora.{name}.split"
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: must be a mapping, got {raw!r}")
    unknown = sorted(set(raw) - set(SPLIT_DEFAULTS))
    if unknown:
        raise ConfigError(f"{key}: unknown key(s) {unknown} (known: {sorted(SPLIT_DEFAULTS)})")
    split = {**SPLIT_DEFAULTS, **raw}
    if split["method"] not in SPLIT_METHODS:
        raise ConfigError(
            f"{key}.method: {split['method']!r} is not one of {', '.join(SPLIT_METHODS)}"
        )
    _int(split["block_size"], f"{key}.block_size", 1)
    _int(split["seed"], f"{key}.seed", 0)
    contigs = split["contigs"] or {}
    if not isinstance(contigs, Mapping):
        raise ConfigError(f"{key}.contigs: must map sample -> {{validation: [...], test: [...]}}")
    for sample, held in contigs.items():
        where = f"{key}.contigs.{sample}"
        if samples and sample not in samples:
            raise ConfigError(f"{where}: {sample!r} is not a sample of corpus {name!r} {samples}")
        if not isinstance(held, Mapping) or set(held) - {"validation", "test"}:
            raise ConfigError(f"{where}: must be a mapping with `validation` and/or `test` lists")
        seen: dict[str, str] = {}
        for part in ("validation", "test"):
            names = held.get(part) or []
            if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
                raise ConfigError(f"{where}.{part}: must be a list of contig names")
            for c in names:
                if c in seen:
                    raise ConfigError(
                        f"{where}: contig {c!r} is listed under both {seen[c]} and {part}"
                    )
                seen[c] = part
    if split["method"] == "contigs" and not contigs:
        raise ConfigError(
            f"{key}: method contigs needs `contigs` (per sample, the validation and test "
            "contigs); with none every window would be training data"
        )
    if split["method"] == "blocks" and contigs:
        raise ConfigError(f"{key}.contigs: only used with method: contigs (method is blocks)")
    split["contigs"] = {
        s: {p: list(v.get(p) or []) for p in ("validation", "test")} for s, v in contigs.items()
    }
    return split


def corpus_spec(name: str, raw: Any, samples: Mapping[str, Any] | None) -> dict[str, Any]:
    """One corpus spec, checked, with defaults filled in (ConfigError names the key).
    With `samples` None (before the sample sheet is read) the sample checks are skipped."""
    key = f"corpora.{name}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: must be a mapping with at least `source`, got {raw!r}")
    source = raw.get("source", "cds")
    if source not in SOURCES:
        raise ConfigError(f"{key}.source: {source!r} is not one of {', '.join(SOURCES)}")
    # the schema fills in the defaults of window keys also for cds/task corpora: not an error
    unknown = sorted(
        k
        for k in set(raw) - KEYS[source]
        if not (source in ("cds", "task") and k in WINDOW_DEFAULTS and raw[k] == WINDOW_DEFAULTS[k])
    )
    if unknown:
        raise ConfigError(
            f"{key}: unknown key(s) {unknown} for source {source} (known: {sorted(KEYS[source])})"
        )
    packing = {}
    if raw.get("packing") is not None:  # absent: corpus.packing
        if raw["packing"] not in PACKINGS:
            raise ConfigError(f"{key}.packing: {raw['packing']!r} is not one of {PACKINGS}")
        packing["packing"] = raw["packing"]
    if source == "task":  # its own packing too (a state-space model needs padded windows)
        return {**_task_spec(name, raw), **packing}
    spec: dict[str, Any] = {"source": source, **packing}
    spec["samples"] = (
        _samples(name, {**raw, "source": source}, samples)
        if samples is not None
        else list(raw.get("samples") or [])
    )
    if source == "cds":
        return spec
    if "window" not in raw:
        raise ConfigError(f"{key}.window: a {source} corpus needs a window length (nt)")
    spec.update({k: raw.get(k, v) for k, v in WINDOW_DEFAULTS.items()})
    _window_lengths(key, raw, spec)
    frac = spec["max_n_fraction"]
    if isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 <= frac <= 1:
        raise ConfigError(f"{key}.max_n_fraction: must be a number in [0, 1], got {frac!r}")
    if spec["n_runs"] not in N_RUNS:
        raise ConfigError(f"{key}.n_runs: {spec['n_runs']!r} is not one of {', '.join(N_RUNS)}")
    _int(spec["min_n_run"], f"{key}.min_n_run", 1)
    for flag in ("both_strands", "exclude_tasks"):
        if not isinstance(spec[flag], bool):
            raise ConfigError(f"{key}.{flag}: must be true or false, got {spec[flag]!r}")
    regions = spec["exclude_regions"] or []
    if not isinstance(regions, list) or not all(isinstance(p, str) for p in regions):
        raise ConfigError(f"{key}.exclude_regions: must be a list of BED file paths")
    spec["exclude_regions"] = list(regions)
    spec["split"] = _split(name, raw.get("split"), spec["samples"])
    if source == "regions":
        features = raw.get("features")
        if not isinstance(features, list) or not features:
            raise ConfigError(
                f"{key}.features: a regions corpus needs a list of features from "
                f"{', '.join(FEATURES)}"
            )
        bad = [f for f in features if f not in FEATURES]
        if bad:
            raise ConfigError(
                f"{key}.features: unknown feature(s) {bad} (known: {', '.join(FEATURES)})"
            )
        spec["features"] = list(dict.fromkeys(features))
        needs_upstream = {"promoter", "upstream"} & set(features)
        if needs_upstream and "upstream" not in raw:
            raise ConfigError(
                f"{key}.upstream: features {sorted(needs_upstream)} need `upstream` (bp "
                "upstream of each gene start)"
            )
        spec["upstream"] = _int(raw.get("upstream", 0), f"{key}.upstream", 0)
    elif "features" in raw or "upstream" in raw:  # pragma: no cover - KEYS rejects them
        raise ConfigError(f"{key}: features/upstream are for source regions")
    return spec


def _window_lengths(key: str, raw: Mapping, spec: dict[str, Any]) -> None:
    spec["window"] = _int(raw["window"], f"{key}.window", 1)
    stride, min_length = raw.get("stride"), raw.get("min_length")
    spec["stride"] = _int(spec["window"] if stride is None else stride, f"{key}.stride", 1)
    spec["min_length"] = _int(
        spec["window"] if min_length is None else min_length, f"{key}.min_length", 1
    )
    if spec["min_length"] > spec["window"]:
        raise ConfigError(
            f"{key}.min_length: {spec['min_length']} is longer than the window ({spec['window']})"
        )


def _task_spec(name: str, raw: Mapping) -> dict[str, Any]:
    """A corpus of the sequences of one task's splits (`task_splits`, default train), cut
    into windows; its own train/validation/test come from a seeded hash of each task item."""
    key = f"corpora.{name}"
    if raw.get("samples"):
        raise ConfigError(f"{key}.samples: a task corpus takes its sequences from `task`")
    task = raw.get("task")
    if not isinstance(task, str) or not task:
        raise ConfigError(f"{key}.task: a task corpus needs the name of a task (e.g. tf_binding)")
    parts = raw.get("task_splits", ["train"])
    if (
        not isinstance(parts, list)
        or not parts
        or any(p not in TASK_SPLITS for p in parts)
        or len(set(parts)) != len(parts)
    ):
        raise ConfigError(
            f"{key}.task_splits: must be a non-empty list of distinct splits from "
            f"{', '.join(TASK_SPLITS)}, got {parts!r}"
        )
    if "window" not in raw:
        raise ConfigError(f"{key}.window: a task corpus needs a window length (nt)")
    spec: dict[str, Any] = {"source": "task", "samples": [], "task": task}
    spec["task_splits"] = list(parts)
    _window_lengths(key, raw, spec)
    spec["seed"] = _int(raw.get("seed", 42), f"{key}.seed", 0)
    return spec


def check_task_corpora(corpora: Mapping[str, Mapping[str, Any]], tasks: Sequence[str]) -> None:
    """Every task corpus must name a task that this configuration builds."""
    for name, spec in corpora.items():
        if spec["source"] == "task" and spec["task"] not in tasks:
            raise ConfigError(
                f"corpora.{name}.task: {spec['task']!r} is not a task of this configuration "
                f"(tasks: {', '.join(tasks) or 'none'})"
            )


def corpus_specs(config: Mapping[str, Any], samples: Mapping[str, Any] | None) -> dict[str, dict]:
    """Every corpus of `config['corpora']` (default: one `cds` corpus), checked; `samples`
    (sample name -> Sample) None skips the checks that need the sample sheet."""
    raw = config.get("corpora")
    raw = DEFAULT_CORPORA if raw is None else raw
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError("corpora: must map corpus names to specs (e.g. {cds: {source: cds}})")
    return {name: corpus_spec(name, spec, samples) for name, spec in raw.items()}


def check_contig_lists(
    corpora: Mapping[str, Mapping[str, Any]],
    contigs_of: Callable[[str], Sequence[str] | None],
) -> None:
    """Every contig named under `corpora.X.split.contigs.SAMPLE` must be a contig of SAMPLE's
    genome. `contigs_of(sample)` gives its contig names, or None when the genome file is not
    there yet (a download): then the windows job checks it. Raises ConfigError naming the key.
    """
    for name, spec in corpora.items():
        held = (spec.get("split") or {}).get("contigs") or {}
        for sample, parts in held.items():
            listed = [c for part in ("validation", "test") for c in parts.get(part, ())]
            if not listed:
                continue
            names = contigs_of(sample)
            if names is None:
                continue
            have = set(names)
            for part in ("validation", "test"):
                missing = [c for c in parts.get(part, ()) if c not in have]
                if missing:
                    shown = ", ".join(list(names)[:20]) + (" ..." if len(names) > 20 else "")
                    raise ConfigError(
                        f"corpora.{name}.split.contigs.{sample}.{part}: contig(s) {missing} "
                        f"are not in the genome of sample {sample} (its contigs: {shown})"
                    )


def content_tokens(nt: int, tokenizer: Mapping[str, Any]) -> int | None:
    """The most tokens (without BOS/EOS) a sequence of `nt` bases can take with a
    fixed-vocabulary tokenizer; None for BPE (its length depends on its merges)."""
    return TOKENIZER_KINDS.get(tokenizer["type"]).content_tokens(nt, tokenizer)


def check_window_fits(
    corpus: str, spec: Mapping[str, Any], tok_name: str, tokenizer: Mapping, block_size: int
) -> None:
    """A genome/regions window must fit one corpus block with its BOS and EOS."""
    if spec["source"] == "cds":
        return
    n = content_tokens(spec["window"], tokenizer)
    if n is None:
        return
    if n + 2 > block_size:
        longest = _longest_window(tokenizer, block_size)
        raise ConfigError(
            f"corpora.{corpus}.window: a window of {spec['window']} nt is {n} {tok_name} "
            f"tokens + BOS/EOS = {n + 2}, longer than corpus.block_size ({block_size}); use a "
            f"window of at most {longest} nt or a larger block_size"
        )


def _longest_window(tokenizer: Mapping, block_size: int) -> int:
    lo, hi = 0, block_size * 8
    while lo < hi:  # largest nt whose tokens fit
        mid = (lo + hi + 1) // 2
        if (content_tokens(mid, tokenizer) or 0) + 2 <= block_size:
            lo = mid
        else:
            hi = mid - 1
    return lo
