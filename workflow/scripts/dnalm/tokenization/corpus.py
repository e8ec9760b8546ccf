"""Pretraining corpus: tokenized CDS packed into fixed-length windows (uint16 ``.npy``).

Output folder (``results/corpus/{tok}/``):

* ``{split}.tokens.npy`` — uint16 (n_windows, block_size) token ids;
* ``{split}.positions.npy`` — uint16 (n_windows, block_size) position ids, restarting at 0
  at the start of every segment (CDS or CDS chunk); padding has position 0;
* ``meta.json`` — tokenizer name/hash/spec, vocab size, block size, packing, special ids
  (``pad_id`` ... ``cls_id``, null where absent), build options, ``splits`` (the names
  built) and, under each split name, its counts: n_windows, n_tokens (non-pad), n_sequences
  (kept input CDS), n_dropped_short, n_rc_added, nucleotides (bases the tokens stand for,
  RC copies included), n_content_tokens (not BOS/EOS/pad; UNK counts as content),
  nt_per_token (nucleotides / n_content_tokens), n_unk, n_segments, n_chunked_sequences,
  pad_fraction, files and, for codon, n_trimmed_partial_codon;
* ``tokenizer/`` — a copy of the tokenizer folder.

How a CDS becomes tokens. Each kept CDS is encoded (no specials) and written as the
segment ``BOS tokens EOS`` (for the BERT-layout tokenizers BOS = ``[CLS]`` and EOS =
``[SEP]``, so CDS in a packed window are separated by ``[SEP]``; for the codon tokenizer
they are ``<BOS_CDS>`` and ``<EOS_CDS>``). BOS therefore marks a true CDS start and EOS a
true CDS end. A segment longer than ``block_size`` is cut into chunks of ``block_size``
tokens (the last one shorter): only the first chunk starts with BOS and only the last ends
with EOS, and every chunk's positions restart at 0.

Packing:

* ``packed``: chunks are placed, in a seeded random order, into windows by first-fit over a
  pool of open windows (when none of them has room, the fullest is closed and a new one
  opened). A CDS that fits in a window is never split across windows, so every CDS of at
  most ``block_size - 2`` tokens is seen whole, with its start; the padding left at the end
  of windows is reported as ``pad_fraction`` (typically a few percent). Position ids
  restart per segment, which lets the model use block-diagonal attention.
* ``padded``: one chunk per window, the rest padded.

Sequences shorter than ``min_length`` nt (or too short to give one token: k nt for
overlapping k-mers, 3 nt for codons) are dropped and counted. Reverse-complement
augmentation (``rc_augment``) adds the reverse complement of every kept *training* CDS
(never validation/test); it is refused for the codon tokenizer, whose tokens only mean
something in the CDS's own frame and strand. A window made only of padding is an integrity
error. The folder is assembled in a temporary directory and renamed into place, so a
failure never leaves a partial corpus.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from dnalm.core.alphabet import reverse_complement
from dnalm.core.errors import ConfigError, DnalmError
from dnalm.core.io import default_file_mode, read_fasta
from dnalm.core.log import progress_disabled
from dnalm.tokenization.build import load_tokenizer
from dnalm.tokenization.tokenizers import DnaTokenizer, replace_dir

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
PACKINGS = ("packed", "padded")
FORMAT_VERSION = 1
#: sequences are encoded in batches of about this many nucleotides (bounds memory)
BATCH_NT = 8_000_000
#: tokens written per vectorised fill step
FILL_TOKENS = 1 << 23


def _records(paths: Sequence[str | os.PathLike], desc: str) -> Iterator[tuple[str, str]]:
    """(name, sequence) of every record of `paths`; name = 'path:line id'."""
    bar = tqdm(desc=desc, unit=" seq", disable=progress_disabled())
    try:
        for path in paths:
            for header, seq, lineno in read_fasta(path):
                ident = header.split(maxsplit=1)[0] if header else "<no id>"
                bar.update(1)
                yield f"{path}:{lineno} {ident}", seq
    finally:
        bar.close()


def _encode_split(
    tok: DnaTokenizer,
    paths: Sequence[str | os.PathLike],
    split: str,
    rc: bool,
    min_length: int,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Encode every kept sequence of one split. Returns the concatenated ids, the token
    count of each sequence (originals and RC copies) and counts."""
    stats = {
        "files": [str(p) for p in paths],
        "n_input_sequences": 0,
        "n_sequences": 0,
        "n_dropped_short": 0,
        "n_rc_added": 0,
        "nucleotides": 0,
    }
    is_codon = tok.type == "codon"
    if is_codon:
        stats["n_trimmed_partial_codon"] = 0
    parts: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    seqs: list[str] = []
    names: list[str] = []
    batch_nt = 0

    def flush() -> None:
        nonlocal seqs, names, batch_nt
        if not seqs:
            return
        todo = [(seqs, names)]
        if rc:
            todo.append(
                ([reverse_complement(s) for s in seqs], [f"{n} (rev. comp.)" for n in names])
            )
        for ss, nn in todo:
            ids, off = tok.encode_concat(ss, nn)
            parts.append(ids)
            counts.append(np.diff(off))
            lengths = np.fromiter((len(s) for s in ss), dtype=np.int64, count=len(ss))
            if is_codon:
                stats["n_trimmed_partial_codon"] += int(np.count_nonzero(lengths % 3))
                lengths -= lengths % 3
            stats["nucleotides"] += int(lengths.sum())
        if rc:
            stats["n_rc_added"] += len(seqs)
        seqs, names, batch_nt = [], [], 0

    for name, seq in _records(paths, f"{split}: encoding"):
        stats["n_input_sequences"] += 1
        if len(seq) < min_length:
            stats["n_dropped_short"] += 1
            continue
        stats["n_sequences"] += 1
        seqs.append(seq)
        names.append(name)
        batch_nt += len(seq)
        if batch_nt >= BATCH_NT:
            flush()
    flush()
    ids = np.concatenate(parts) if parts else np.zeros(0, np.uint16)
    cnt = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    return ids, cnt, stats


def _segments(
    ids: np.ndarray, counts: np.ndarray, bos: int | None, eos: int | None, block: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Lay out ``BOS ids EOS`` per sequence in one flat array and cut it into chunks of at
    most `block` tokens. Returns (flat, chunk_start, chunk_len, n_chunked_sequences)."""
    nb, ne = int(bos is not None), int(eos is not None)
    n = counts.size
    full_len = counts + nb + ne  # (n,)
    full_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(full_len, out=full_off[1:])
    flat = np.empty(int(full_off[-1]), dtype=np.uint16)
    content = np.ones(flat.size, dtype=bool)
    if nb:
        flat[full_off[:-1]] = bos
        content[full_off[:-1]] = False
    if ne:
        flat[full_off[1:] - 1] = eos
        content[full_off[1:] - 1] = False
    flat[content] = ids
    n_chunks = -(-full_len // block)  # ceil
    r = np.repeat(np.arange(n), n_chunks)
    j = np.arange(int(n_chunks.sum())) - np.repeat(np.cumsum(n_chunks) - n_chunks, n_chunks)
    start = full_off[r] + j * block
    length = np.minimum(block, full_len[r] - j * block)
    return flat, start, length, int(np.count_nonzero(n_chunks > 1))


def _pack_first_fit(
    lengths: np.ndarray, block: int, pool: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Assign segments (in the given order) to windows by first-fit over `pool` open
    windows. Returns (window index, offset in window) per segment and the window count."""
    n = lengths.size
    win = np.empty(n, dtype=np.int64)
    off = np.empty(n, dtype=np.int64)
    rem = np.full(pool, -1, dtype=np.int64)  # room left in each open window; -1 = free slot
    slot_win = np.full(pool, -1, dtype=np.int64)
    n_win = 0
    for s in tqdm(range(n), desc="packing", unit=" seg", disable=progress_disabled()):
        length = int(lengths[s])
        if length == block:  # a full chunk fills a window of its own
            win[s], off[s] = n_win, 0
            n_win += 1
            continue
        fits = np.flatnonzero(rem >= length)
        if fits.size:
            j = int(fits[0])
        else:
            free = np.flatnonzero(rem < 0)
            j = int(free[0]) if free.size else int(np.argmin(rem))  # close the fullest
            slot_win[j] = n_win
            rem[j] = block
            n_win += 1
        win[s] = slot_win[j]
        off[s] = block - rem[j]
        rem[j] -= length
    return win, off, n_win


def _fill(
    flat: np.ndarray,
    start: np.ndarray,
    length: np.ndarray,
    win: np.ndarray,
    woff: np.ndarray,
    n_win: int,
    block: int,
    pad: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Write the segments into (n_win, block) token and position arrays."""
    tokens = np.full((n_win, block), pad, dtype=np.uint16)  # (W, B)
    positions = np.zeros((n_win, block), dtype=np.uint16)  # (W, B)
    tflat, pflat = tokens.reshape(-1), positions.reshape(-1)
    dst = win * block + woff
    cum = np.cumsum(length)
    s0 = 0
    while s0 < length.size:
        base = cum[s0] - length[s0]
        s1 = int(np.searchsorted(cum, base + FILL_TOKENS, side="right"))
        s1 = max(s1, s0 + 1)
        ln = length[s0:s1]
        rep = np.repeat(np.arange(s1 - s0), ln)
        within = np.arange(int(ln.sum())) - np.repeat(np.cumsum(ln) - ln, ln)
        tflat[dst[s0:s1][rep] + within] = flat[start[s0:s1][rep] + within]
        pflat[dst[s0:s1][rep] + within] = within
        s0 = s1
    return tokens, positions


def build_corpus(
    tokenizer: str | os.PathLike | DnaTokenizer,
    split_fastas: Mapping[str, Sequence[str | os.PathLike]],
    out_dir: str | os.PathLike,
    block_size: int,
    packing: str = "packed",
    rc_augment: bool = False,
    min_length: int = 1,
    seed: int = 0,
    tokenizer_name: str | None = None,
    pool_size: int = 64,
) -> dict[str, Any]:
    """Build the pretraining corpus of one tokenizer (see the module docstring).

    Args:
        tokenizer: a tokenizer folder (as saved by ``DnaTokenizer.save``) or object.
        split_fastas: split name (train / validation / test) -> FASTA files (plain or gzip)
            of the samples that feed pretraining, e.g. ``results/splits/{sample}/train.fa.gz``.
        out_dir: the corpus folder to create (replaced if it exists).
        block_size: tokens per window (2..65535).
        packing: "packed" or "padded".
        rc_augment: add the reverse complement of each training CDS (not for codon).
        min_length: sequences shorter than this (nt) are dropped and counted.
        seed: seed of the order in which segments are packed (and written).
        tokenizer_name: recorded in meta.json (default: the folder name or the type).
        pool_size: open windows first-fit packing chooses among.

    Returns the meta dict also written to ``meta.json``.
    """
    tok = load_tokenizer(tokenizer)
    if tokenizer_name is None:
        tokenizer_name = (
            Path(tokenizer).name if not isinstance(tokenizer, DnaTokenizer) else tok.type
        )
    unknown = sorted(set(split_fastas) - set(SPLITS))
    if unknown:
        raise ConfigError(f"corpus: unknown split name(s) {unknown}; expected some of {SPLITS}")
    if packing not in PACKINGS:
        raise ConfigError(f"corpus: packing must be one of {PACKINGS}, got {packing!r}")
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, int)
        or not 2 <= block_size <= 65535
    ):
        raise ConfigError(
            f"corpus: block_size must be an integer in [2, 65535], got {block_size!r}"
        )
    if not isinstance(min_length, int) or min_length < 0:
        raise ConfigError(f"corpus: min_length must be a non-negative integer, got {min_length!r}")
    if rc_augment and tok.type == "codon":
        raise ConfigError(
            "corpus: rc_augment is not allowed with the codon tokenizer: the reverse "
            "complement of a CDS is not a CDS read in frame; set rc_augment: false for it"
        )
    if tok.pad_id is None:  # pragma: no cover - every dnalm scheme has one
        raise ConfigError("corpus: the tokenizer has no padding token")
    min_eff = max(min_length, tok.min_tokenizable_length, 1)

    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "tokenizer": tokenizer_name,
        "tokenizer_hash": tok.hash,
        "tokenizer_type": tok.type,
        "tokenizer_spec": tok.spec,
        "vocab_size": tok.vocab_size,
        "block_size": block_size,
        "packing": packing,
        **tok.special_ids,
        "rc_augment": bool(rc_augment),
        "min_length": min_length,
        "min_length_effective": min_eff,
        "seed": seed,
        "dtype": "uint16",
        "segment_layout": "BOS tokens EOS per CDS; BOS only on a CDS's first chunk, EOS only "
        "on its last; positions restart at 0 per chunk; pad position 0",
        "splits": [],
    }
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".part", dir=out_dir.parent))
    os.chmod(tmp, default_file_mode(directory=True))  # mkdtemp gives 0700
    try:
        for split in SPLITS:
            if split not in split_fastas:
                continue
            rc = bool(rc_augment) and split == "train"
            ids, counts, stats = _encode_split(tok, list(split_fastas[split]), split, rc, min_eff)
            empty = counts == 0  # cannot happen after min_eff; kept as a guard
            if empty.any():  # pragma: no cover
                raise AssertionError(f"{split}: {int(empty.sum())} sequences gave no tokens")
            flat, start, length, n_chunked = _segments(
                ids, counts, tok.bos_id, tok.eos_id, block_size
            )
            order = np.random.default_rng(seed).permutation(length.size)
            start, length = start[order], length[order]
            if packing == "packed":
                win, woff, n_win = _pack_first_fit(length, block_size, pool_size)
            else:
                win = np.arange(length.size, dtype=np.int64)
                woff = np.zeros(length.size, dtype=np.int64)
                n_win = int(length.size)
            tokens, positions = _fill(flat, start, length, win, woff, n_win, block_size, tok.pad_id)
            _check_windows(tokens, split, int(length.sum()), tok.pad_id)
            n_tok = int(length.sum())
            special = tok.is_special(flat)
            if tok.unk_id is not None:
                n_unk = int(np.count_nonzero(flat == tok.unk_id))
                special &= flat != tok.unk_id
            else:  # pragma: no cover
                n_unk = 0
            n_content = int(flat.size - np.count_nonzero(special))
            stats.update(
                n_windows=n_win,
                n_tokens=n_tok,
                n_content_tokens=n_content,
                n_unk=n_unk,
                n_segments=int(length.size),
                n_chunked_sequences=n_chunked,
                nt_per_token=(stats["nucleotides"] / n_content) if n_content else None,
                pad_fraction=(1.0 - n_tok / (n_win * block_size)) if n_win else None,
            )
            meta["splits"].append(split)
            meta[split] = stats
            np.save(tmp / f"{split}.tokens.npy", tokens)
            np.save(tmp / f"{split}.positions.npy", positions)
            log.info(
                "%s: %d sequences (%d dropped < %d nt, %d RC added) -> %d windows of %d, "
                "%.1f%% padding, %.2f nt/token",
                split,
                stats["n_sequences"],
                stats["n_dropped_short"],
                min_eff,
                stats["n_rc_added"],
                n_win,
                block_size,
                100 * (stats["pad_fraction"] or 0.0),
                stats["nt_per_token"] or 0.0,
            )
            if n_win == 0:
                if split == "train":
                    raise DnalmError(
                        "corpus: the train split has no sequences left "
                        f"({stats['n_input_sequences']} read from {stats['files']}, "
                        f"{stats['n_dropped_short']} shorter than "
                        f"{min_eff} nt); add samples with pretrain: true or lower min_length"
                    )
                log.warning("corpus: split %s is empty (0 windows)", split)
        tok.save(tmp / "tokenizer")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def _check_windows(tokens: np.ndarray, split: str, n_tokens: int, pad: int) -> None:
    """Integrity check: no window is all padding and every placed token is in place."""
    nonpad = np.count_nonzero(tokens != pad, axis=1)  # (W,)
    n_empty = int(np.count_nonzero(nonpad == 0))
    if n_empty:
        raise DnalmError(
            f"corpus integrity: {n_empty} of {tokens.shape[0]} {split} windows are only "
            "padding; this is a bug in the packing, please report it"
        )
    if int(nonpad.sum()) != n_tokens:
        raise DnalmError(
            f"corpus integrity: {split} holds {int(nonpad.sum())} non-pad tokens, expected "
            f"{n_tokens} (a padding id inside a sequence, or overlapping segments)"
        )


__all__ = ["PACKINGS", "SPLITS", "build_corpus"]


def register(subparsers) -> None:
    """`dnalm corpus`: tokenize split FASTA files into the pretraining arrays."""
    p = subparsers.add_parser("corpus", help="build a tokenized pretraining corpus")
    p.add_argument("tokenizer", help="tokenizer folder")
    p.add_argument("out_dir", help="corpus folder to write")
    for split in ("train", "validation", "test"):
        p.add_argument(f"--{split}", nargs="+", required=True, help=f"{split} FASTA files")
    p.add_argument("--block-size", type=int, default=256)
    p.add_argument("--packing", choices=["packed", "padded"], default="packed")
    p.add_argument("--rc-augment", action="store_true")
    p.add_argument("--min-length", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)

    def run(args) -> int:
        meta = build_corpus(
            args.tokenizer,
            {"train": args.train, "validation": args.validation, "test": args.test},
            args.out_dir,
            block_size=args.block_size,
            packing=args.packing,
            rc_augment=args.rc_augment,
            min_length=args.min_length,
            seed=args.seed,
        )
        for split in meta["splits"]:
            s = meta[split]
            print(f"{split}: {s['n_windows']} windows, {s['n_tokens']} tokens")
        return 0

    p.set_defaults(func=run)
