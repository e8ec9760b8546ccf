"""Corpus shards: how the windows of a split are written (ShardWriter) and read back
(ShardedArray, open_split), so that neither building nor reading a corpus holds a whole
split in memory.

Layout of a split (format version 2): ``{split}/shard-NNNNN.tokens.npy`` (token ids, uint16,
or uint32 when the vocabulary needs it), ``{split}/shard-NNNNN.positions.npy`` (uint16) and,
only when the split has soft-masked (lower-case) input, ``{split}/shard-NNNNN.lowercase.npy``
(uint8, 1 where the token covers at least one lower-case nucleotide); each is an
(n_windows_of_the_shard, block_size) array. ``meta.json`` lists, under each split,
``shards`` (name, n_windows and ``files``: each array's size in bytes and sha256, in order)
and ``has_lowercase``; ``{split}/index.json`` repeats the list. Every shard holds
``shard_windows`` windows except the last one.

A shard file whose size is not the recorded one (a truncated copy, a full disk) is refused
when the split is opened (:func:`open_split`: one ``stat`` per file, so every load checks
it), naming the file and the fix, instead of numpy's "mmap length is greater than file
size". The checksums are compared where the files are read whole anyway: pretraining hashes
every train and validation shard for its data fingerprint
(:func:`dnalm.training.lm_data.corpus_fingerprint`), and compares each hash with meta.json's
there, so a same-size corruption costs no extra read to find.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dnalm.core.artifacts import SHARD_INDEX_JSON
from dnalm.core.errors import DnalmError, InputFormatError
from dnalm.core.io import file_digest

KINDS = ("tokens", "positions", "lowercase")


def token_dtype(vocab_size: int) -> type:
    """uint16 while every id fits, else uint32."""
    return np.uint16 if vocab_size <= 1 << 16 else np.uint32


class ShardWriter:
    """Collect windows of one split in a buffer of `shard_windows` rows and write each full
    buffer as one shard (tokens, positions, lowercase flags). Memory: the buffer only."""

    def __init__(self, out_dir: Path, split: str, block: int, shard_windows: int, dtype, pad):
        self.dir = Path(out_dir) / split
        self.dir.mkdir(parents=True, exist_ok=True)
        self.split, self.block, self.cap = split, block, int(shard_windows)
        self.pad = pad
        self.tok = np.full((self.cap, block), pad, dtype=dtype)  # (S, B)
        self.pos = np.zeros((self.cap, block), dtype=np.uint16)  # (S, B)
        self.low = np.zeros((self.cap, block), dtype=np.uint8)  # (S, B)
        self.fill = np.zeros(self.cap, dtype=np.int64)  # tokens placed per row
        self.n = 0  # rows in the buffer
        self.shards: list[dict[str, Any]] = []
        self.any_lowercase = False

    @property
    def n_windows(self) -> int:
        return sum(s["n_windows"] for s in self.shards) + self.n

    def add(self, tok: np.ndarray, pos: np.ndarray, low: np.ndarray, fill: int) -> None:
        """Append one window (rows of length block_size; `fill` = its non-pad tokens)."""
        i = self.n
        self.tok[i], self.pos[i], self.low[i], self.fill[i] = tok, pos, low, fill
        self.n += 1
        if self.n == self.cap:
            self.flush()

    def flush(self) -> None:
        """Write the buffered windows as the next shard (nothing when empty)."""
        n = self.n
        if not n:
            return
        name = f"shard-{len(self.shards):05d}"
        tok = self.tok[:n]
        nonpad = np.count_nonzero(tok != self.pad, axis=1)  # (n,)
        if np.any(nonpad == 0):
            raise DnalmError(
                f"corpus integrity: {int(np.count_nonzero(nonpad == 0))} {self.split} windows "
                f"of {name} are only padding; this is a bug in the packing, please report it"
            )
        if not np.array_equal(nonpad, self.fill[:n]):
            raise DnalmError(
                f"corpus integrity: {self.split} {name} holds {int(nonpad.sum())} non-pad "
                f"tokens, expected {int(self.fill[:n].sum())} (a padding id inside a "
                "sequence, or overlapping segments)"
            )
        files = {}
        for kind, arr in zip(KINDS, (tok, self.pos[:n], self.low[:n]), strict=True):
            path = self.dir / f"{name}.{kind}.npy"
            np.save(path, arr)
            files[kind] = {"bytes": path.stat().st_size, "sha256": file_digest(path, "sha256")}
        self.any_lowercase |= bool(self.low[:n].any())
        self.shards.append({"name": name, "n_windows": int(n), "files": files})
        self.tok[:n] = self.pad
        self.pos[:n] = 0
        self.low[:n] = 0
        self.n = 0

    def close(self) -> list[dict[str, Any]]:
        """Write the last shard; drop the flag files when the split has no lower case; write
        index.json. Returns the shard list."""
        self.flush()
        if not self.any_lowercase:
            for s in self.shards:
                (self.dir / f"{s['name']}.lowercase.npy").unlink()
                s["files"].pop("lowercase")
        index = {"shards": self.shards, "has_lowercase": self.any_lowercase}
        (self.dir / SHARD_INDEX_JSON).write_text(json.dumps(index, indent=1) + "\n")
        return self.shards


class ShardedArray:
    """The (n_windows, block_size) array of one kind (tokens, positions or lowercase) of a
    split, backed by one memory map per shard. Supports what pretraining and evaluation do
    with a window array: ``.shape``/``.dtype``/``.size``/``len``, ``a[i]``, ``a[index_array]``
    (rows in the order asked), ``a[start:stop]`` (a lazy view), ``a.max()`` (shard by shard)
    and ``np.asarray(a)`` (reads everything: small arrays only)."""

    def __init__(self, parts: list[np.ndarray], paths: list[Path]):
        if not parts:
            raise ValueError("a ShardedArray needs at least one shard")
        self.parts, self.paths = parts, paths
        self.offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([p.shape[0] for p in parts], out=self.offsets[1:])
        self.shape = (int(self.offsets[-1]), int(parts[0].shape[1]))
        self.dtype = parts[0].dtype
        self.ndim = 2

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ShardedArray(shape={self.shape}, dtype={self.dtype}, shards={len(self.parts)})"

    def iter_shards(self) -> Iterator[tuple[Path, np.ndarray]]:
        yield from zip(self.paths, self.parts, strict=True)

    def max(self) -> Any:
        return max(p.max() for p in self.parts if p.size) if self.size else self.dtype.type(0)

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        n = self.shape[0]
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"window index out of range for {n} windows")
        idx = np.where(idx < 0, idx + n, idx)
        out = np.empty((idx.size, self.shape[1]), dtype=self.dtype)
        shard = np.searchsorted(self.offsets, idx, side="right") - 1
        for s in np.unique(shard):
            m = shard == s
            out[m] = self.parts[s][idx[m] - self.offsets[s]]
        return out

    def __getitem__(self, key):
        if isinstance(key, tuple):
            rows = self[key[0]]
            if isinstance(rows, ShardedArray):
                rows = np.asarray(rows)
            return rows[(slice(None), *key[1:])] if rows.ndim == 2 else rows[key[1:]]
        if isinstance(key, (int, np.integer)):
            return self._rows(np.array([int(key)]))[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                return self._rows(np.arange(start, stop, step))
            parts, paths = [], []
            for s, part in enumerate(self.parts):
                lo = max(start - self.offsets[s], 0)
                hi = min(stop - self.offsets[s], part.shape[0])
                if hi > lo:
                    parts.append(part[lo:hi])
                    paths.append(self.paths[s])
            if not parts:
                return np.zeros((0, self.shape[1]), dtype=self.dtype)
            return ShardedArray(parts, paths)
        idx = np.asarray(key)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        if idx.ndim != 1:
            return self._rows(idx.reshape(-1)).reshape(*idx.shape, self.shape[1])
        return self._rows(idx.astype(np.int64))

    def __array__(self, dtype=None, copy=None):
        out = np.concatenate([np.asarray(p) for p in self.parts])
        return out if dtype is None else out.astype(dtype)


def shard_record(shard: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """What meta.json records of one array file of a shard (bytes, sha256); None for a
    corpus built before sizes and checksums were recorded."""
    files = shard.get("files")
    return files.get(kind) if isinstance(files, dict) else None


def damaged_shard(path: Path, corpus_dir: Path, why: str) -> InputFormatError:
    """The error for a shard file that is not the one the corpus build wrote."""
    return InputFormatError(
        f"{path}: {why}; the shard is truncated or was changed after the corpus was built. "
        f"Rebuild the corpus: delete {corpus_dir} and rerun its corpus rule (or dnalm corpus)"
    )


def open_split(corpus_dir: Path, split: str, meta: dict[str, Any], kind: str) -> ShardedArray:
    """Memory-map every shard of `kind` ("tokens", "positions" or "lowercase") of `split`
    as listed in meta.json. Raises InputFormatError for a missing shard or a window count
    that differs from meta.json."""
    info = meta.get(split)
    if not isinstance(info, dict) or not info.get("shards"):
        raise InputFormatError(
            f"{corpus_dir}/meta.json: no shards listed for the {split} split; rebuild the corpus"
        )
    parts, paths = [], []
    for shard in info["shards"]:
        path = corpus_dir / split / f"{shard['name']}.{kind}.npy"
        if not path.is_file():
            raise InputFormatError(f"{path}: missing; rebuild the corpus folder {corpus_dir}")
        record = shard_record(shard, kind)
        size = path.stat().st_size
        if record is not None and size != record["bytes"]:
            raise damaged_shard(
                path, corpus_dir, f"{size} bytes, but meta.json records {record['bytes']}"
            )
        try:
            arr = np.load(path, mmap_mode="r")
        except ValueError as err:  # a corpus without recorded sizes, truncated
            raise damaged_shard(path, corpus_dir, f"not a whole array file ({err})") from err
        if arr.ndim != 2 or arr.shape[0] != shard["n_windows"]:
            raise InputFormatError(
                f"{path}: shape {arr.shape}, but meta.json lists {shard['n_windows']} windows "
                "for this shard; rebuild the corpus"
            )
        parts.append(arr)
        paths.append(path)
    return ShardedArray(parts, paths)
