"""The species task: in-frame fragments of held-out CDS, drawn per species (as in the
Nucleotide Transformer species-probe post)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.core.alphabet import CODE_TO_BASE
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import read_fasta
from dnalm.kinds.tasks import BUILTIN_TASKS
from dnalm.tasks.common import (
    DEFAULT_MAX_PER_CDS,
    SPLITS,
    check_class_splits,
    check_exists,
    stable_u64,
    write_task,
)

log = logging.getLogger(__name__)


@dataclass
class _Cds:
    sample: str
    cds_id: str
    seq: str
    source: str
    line: int
    _offsets: np.ndarray | None = None
    _ptr: int = 0
    taken: list[int] = field(default_factory=list)

    def next_offset(self, length: int, rng: np.random.Generator, used: set[str]) -> int | None:
        """The next random in-frame offset whose window is ACGT-only, does not overlap a
        window already taken from this CDS and whose sequence is not yet in the task."""
        if self._offsets is None:
            arr = np.frombuffer(self.seq.encode("ascii"), dtype=np.uint8)
            bad = np.concatenate([[0], np.cumsum(~np.isin(arr, CODE_TO_BASE[:4]))])
            starts = np.arange(0, len(arr) - length + 1, 3)
            ok = starts[bad[starts + length] - bad[starts] == 0]
            self._offsets = ok[rng.permutation(len(ok))]
        while self._ptr < len(self._offsets):
            off = int(self._offsets[self._ptr])
            self._ptr += 1
            if any(abs(off - t) < length for t in self.taken):
                continue
            frag = self.seq[off : off + length]
            if frag in used:
                continue
            self.taken.append(off)
            used.add(frag)
            return off
        return None


def _read_cds_pool(sample: str, path: Path) -> list[_Cds]:
    check_exists([path])
    pool = []
    for header, seq, line in read_fasta(path):
        cds_id = header.split(maxsplit=1)[0] if header else ""
        if not cds_id:
            raise InputFormatError(f"{path}:{line}: FASTA header without an id")
        pool.append(_Cds(sample, cds_id, seq.upper(), str(path), line))
    return pool


def _draw(
    pool: list[_Cds], n: int, length: int, max_per_cds: int, rng: np.random.Generator, used: set
) -> list[tuple[_Cds, int]]:
    """Round-robin over the CDS in a random order: one fragment per CDS per round, until `n`
    fragments, every CDS at `max_per_cds`, or no CDS has a free window left."""
    active = [pool[i] for i in rng.permutation(len(pool))]
    out: list[tuple[_Cds, int]] = []
    while active and len(out) < n:
        keep = []
        for cds in active:
            if len(out) >= n:
                break
            off = cds.next_offset(length, rng, used)
            if off is None:
                continue
            out.append((cds, off))
            if len(cds.taken) < max_per_cds:
                keep.append(cds)
        active = keep
    return out


def _check_every_species_drawn(
    drawn: Mapping[tuple[str, str], list],
    pools: Mapping[str, Mapping[str, list[_Cds]]],
    by_species: Mapping[str, list[Mapping]],
    requested: Mapping[str, int],
    length: int,
) -> None:
    """A species with no train or no test fragment cannot be learnt or scored: stop naming
    its sample(s), their split files and the fix (the CDS counts are only known once the
    genomes are extracted and split, so this cannot be checked before the run)."""
    for species in sorted(pools):
        for split in ("train", "test"):
            if not requested[split] or drawn.get((split, species)):
                continue
            members = by_species[species]
            names = ", ".join(str(s["sample"]) for s in members)
            src = "validation" if split == "train" else "test"
            files = ", ".join(str(s[f"{src}_fasta"]) for s in members)
            raise InputFormatError(
                f"species_fragments: sample(s) {names} (species {species!r}) give no {split} "
                f"fragment of {length} nt: {len(pools[species][split])} {src}-split CDS in "
                f"{files}, none with an ACGT-only in-frame window of {length} nt. Set "
                f"species_task: false for {names} in the sample sheet, add CDS (a larger "
                "genome or another sample of this species), or lower "
                "tasks.species_fragments.length"
            )


def build_species_fragments(
    samples: Sequence[Mapping],
    out_dir: str | os.PathLike,
    length: int = 60,
    n_train: int = 1000,
    n_test: int = 1000,
    n_validation: int = 0,
    seed: int = 0,
    max_per_cds: int = DEFAULT_MAX_PER_CDS,
    balance: bool = False,
) -> pd.DataFrame:
    """Species classification from short in-frame CDS fragments of held-out CDS.

    `samples`: dicts with ``sample``, ``species``, ``validation_fasta`` and ``test_fasta``
    (``results/splits/{sample}/{validation,test}.fa.gz``). Samples sharing a species pool their
    CDS. Per species, `n_train` fragments (task train) are cut from the validation-split CDS
    and `n_test` (task test) from the test-split CDS, so no CDS feeds both; with
    `n_validation` > 0 a share of the validation-split CDS is set aside for a task validation
    split. Each fragment is `length` nt starting at an offset divisible by 3 from the CDS start,
    ACGT only; fragments of one CDS do not overlap, at most `max_per_cds` per CDS, drawn
    round-robin so they spread over genes; no fragment sequence occurs twice in the task.

    A species with too few CDS gets fewer fragments and a warning (the summary's ``n`` vs
    ``n_requested`` columns show it). `balance=True` (default False: keep every fragment found,
    warn about the imbalance) downsamples every species to the smallest count per split, with a
    warning. Seeded; a species' draw depends only on seed, species and inputs."""
    if length < 1 or n_train < 1 or n_test < 1 or n_validation < 0 or max_per_cds < 1:
        raise ConfigError(
            "species_fragments: need length >= 1, n_train >= 1, n_test >= 1, n_validation >= 0 "
            f"and max_per_cds >= 1 (got length={length}, n_train={n_train}, n_test={n_test}, "
            f"n_validation={n_validation}, max_per_cds={max_per_cds})"
        )
    keys = ("sample", "species", "validation_fasta", "test_fasta")
    by_species: dict[str, list[Mapping]] = {}
    for i, s in enumerate(samples):
        missing = [k for k in keys if not s.get(k)]
        if missing:
            raise ConfigError(
                f"species_fragments: sample entry {i} ({s.get('sample', '?')}) lacks {missing}; "
                f"each entry needs {list(keys)}"
            )
        by_species.setdefault(str(s["species"]), []).append(s)
    if len(by_species) < 2:
        raise ConfigError(
            "species_fragments needs samples of at least 2 species (flag more samples with "
            f"species_task), got {sorted(by_species)}"
        )
    requested = {"train": n_train, "validation": n_validation, "test": n_test}

    pools: dict[str, dict[str, list[_Cds]]] = {}
    inputs: list[Path] = []
    for species in sorted(by_species):
        train_pool: list[_Cds] = []
        test_pool: list[_Cds] = []
        for s in by_species[species]:
            vpath, tpath = Path(s["validation_fasta"]), Path(s["test_fasta"])
            inputs += [vpath, tpath]
            train_pool += _read_cds_pool(str(s["sample"]), vpath)
            test_pool += _read_cds_pool(str(s["sample"]), tpath)
        val_pool: list[_Cds] = []
        if n_validation:
            rng = np.random.default_rng([seed, stable_u64(species), 7])
            order = rng.permutation(len(train_pool))
            n_val_cds = round(len(train_pool) * n_validation / (n_train + n_validation))
            val_pool = [train_pool[i] for i in order[:n_val_cds]]
            train_pool = [train_pool[i] for i in order[n_val_cds:]]
        pools[species] = {"train": train_pool, "validation": val_pool, "test": test_pool}

    # No CDS (by sequence) may feed both task train/validation and test.
    fit_seqs = {c.seq for p in pools.values() for c in p["train"] + p["validation"]}
    for species, p in pools.items():
        clash = [c for c in p["test"] if c.seq in fit_seqs]
        if clash:
            log.warning(
                "species %r: %d test-split CDS (first %s:%d) are identical to a validation-split "
                "CDS; dropped from the task's test pool",
                species,
                len(clash),
                clash[0].source,
                clash[0].line,
            )
            p["test"] = [c for c in p["test"] if c.seq not in fit_seqs]

    used: set[str] = set()
    drawn: dict[tuple[str, str], list[tuple[_Cds, int]]] = {}
    for split_idx, split in enumerate(SPLITS):
        if not requested[split]:
            continue
        for species in sorted(pools):
            rng = np.random.default_rng([seed, stable_u64(species), split_idx])
            pool = pools[species][split]
            got = _draw(pool, requested[split], length, max_per_cds, rng, used)
            drawn[(split, species)] = got
            if len(got) < requested[split]:
                src = "validation" if split != "test" else "test"
                log.warning(
                    "species %r: only %d of %d %s fragments of %d nt (from %d %s-split CDS of "
                    "sample(s) %s; max %d per CDS); the task is imbalanced unless balance: true",
                    species,
                    len(got),
                    requested[split],
                    split,
                    length,
                    len(pool),
                    src,
                    ", ".join(sorted({str(s["sample"]) for s in by_species[species]})),
                    max_per_cds,
                )

    _check_every_species_drawn(drawn, pools, by_species, requested, length)

    if balance:
        for split in SPLITS:
            counts = {sp: len(v) for (s, sp), v in drawn.items() if s == split}
            if not counts:
                continue
            low = min(counts.values())
            if any(c > low for c in counts.values()):
                log.warning(
                    "balance: downsampling every species to %d %s fragments (counts were %s)",
                    low,
                    split,
                    counts,
                )
                for sp in counts:
                    # round-robin order: the first `low` are the best spread over CDS
                    drawn[(split, sp)] = drawn[(split, sp)][:low]

    records = []
    for (split, species), frags in drawn.items():
        for cds, off in frags:
            records.append(
                {
                    "id": f"{cds.sample}:{cds.cds_id}:{off}",
                    "sequence": cds.seq[off : off + length],
                    "split": split,
                    "label": species,
                    "species": species,
                    "sample": cds.sample,
                    "cds_id": cds.cds_id,
                    "offset": off,
                    "cds_length": len(cds.seq),
                    "source": cds.source,
                    "source_line": cds.line,
                    "n_iupac_to_n": 0,
                    "n_u_to_t": 0,
                }
            )
    df = pd.DataFrame.from_records(records)
    if df.empty:
        raise InputFormatError(
            f"species_fragments: no fragment of {length} nt could be cut from the inputs "
            f"{sorted({str(p) for p in inputs})}"
        )
    df["split"] = pd.Categorical(df["split"], SPLITS)
    df = df.sort_values(["split", "label", "sample", "cds_id", "offset"], kind="stable")
    df = df.reset_index(drop=True)
    df["split"] = df["split"].astype(str)
    check_class_splits(df)

    extra: dict[tuple[str, str], dict] = {}
    for (split, species), frags in drawn.items():
        pool = pools[species][split]
        extra[(split, species)] = {
            "n_requested": requested[split],
            "n_cds_available": len(pool),
            "n_cds_used": len({id(c) for c, _ in frags}),
        }
    params = {
        "task": "species_fragments",
        "length": length,
        "n_train": n_train,
        "n_validation": n_validation,
        "n_test": n_test,
        "seed": seed,
        "max_per_cds": max_per_cds,
        "balance": balance,
        "samples": [{k: str(s[k]) for k in keys} for s in samples],
    }
    kind = BUILTIN_TASKS.get("species_fragments").kind
    return write_task(out_dir, df, kind, params, inputs, extra)
