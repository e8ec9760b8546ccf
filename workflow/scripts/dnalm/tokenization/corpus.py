"""Pretraining corpus: tokenized CDS packed into fixed-length windows (uint16 ``.npy``).

Output folder (``results/corpus/{corpus}/{tok}/``, format version 2):

* ``{split}/shard-NNNNN.tokens.npy`` — (n, block_size) token ids, uint16 (uint32 for a
  vocabulary beyond 65,536); ``{split}/shard-NNNNN.positions.npy`` — uint16 position ids,
  restarting at 0 at the start of every segment (CDS or CDS chunk); padding has position 0;
  ``{split}/shard-NNNNN.lowercase.npy`` — uint8, 1 where a token covers at least one
  soft-masked (lower-case) input nucleotide, written only when the split has lower case;
  ``{split}/index.json`` — the shard list. Every shard but the last holds
  ``shard_windows = max(1, shard_tokens // block_size)`` windows (dnalm.tokenization.shards
  writes and reads them; dnalm.training.lm_data.load_split memory-maps them);
* ``meta.json`` — tokenizer name/hash/spec, vocab size, block size, packing, special ids
  (``pad_id`` ... ``cls_id``, null where absent), build options (pool_size, batch_nt,
  shard_tokens, shard_windows, dtype), ``splits`` (the names built) and, under each split
  name, its counts: n_windows, n_tokens (non-pad), n_sequences (kept input CDS),
  n_dropped_short, n_rc_added, nucleotides (bases the tokens stand for, RC copies
  included), n_content_tokens (not BOS/EOS/pad; UNK counts as content), nt_per_token
  (nucleotides / n_content_tokens), n_unk, n_segments, n_chunked_sequences, pad_fraction,
  n_lowercase_nt, lowercase_fraction (lower-case share of the nucleotides),
  n_lowercase_tokens, lowercase_token_fraction, has_lowercase, n_shards, shards (name and
  n_windows of each), files and, for codon, n_trimmed_partial_codon;
* ``tokenizer/`` — a copy of the tokenizer folder.

Memory. A build streams its input: records are read and encoded in batches of about
``BATCH_NT`` nucleotides, the batch's chunks are packed into a bounded pool of open windows,
and windows leaving the pool go to a shard buffer written out when full. Peak memory is
bounded by batch + pool + shard buffer, whatever the input size.

Soft-masked lower case. The tokens follow the tokenizer (the nucleotide tokenizer with
``keep_case: true`` has lower-case tokens; the others upper-case their input), but the
lower-case flag of each token is kept either way: pretraining can weight the loss of those
targets (``lowercase_loss_weight``).

How a CDS becomes tokens. Each kept CDS is encoded (no specials) and written as the
segment ``BOS tokens EOS`` (for the BERT-layout tokenizers BOS = ``[CLS]`` and EOS =
``[SEP]``, so CDS in a packed window are separated by ``[SEP]``; for the codon tokenizer
they are ``<BOS_CDS>`` and ``<EOS_CDS>``). BOS therefore marks a true CDS start and EOS a
true CDS end. A segment longer than ``block_size`` is cut into chunks of ``block_size``
tokens (the last one shorter): only the first chunk starts with BOS and only the last ends
with EOS, and every chunk's positions restart at 0.

Packing:

* ``packed``: chunks are placed into windows by first-fit over a pool of ``pool_size`` open
  windows (when none of them has room, the fullest is closed and a new one opened; a full
  window is closed at once). A CDS that fits in a window is never split across windows, so
  every CDS of at most ``block_size - 2`` tokens is seen whole, with its start; the padding
  left at the end of windows is reported as ``pad_fraction`` (typically a few percent).
  Position ids restart per segment, which lets the model use block-diagonal attention.
  Order: the chunks of each input batch (about ``BATCH_NT`` nt of consecutive records) are
  shuffled with a generator seeded by ``seed``; windows are written in the order they
  close. The trade-off of streaming: a segment only shares windows with segments of its own
  batch or of a neighbouring one (the pool outlives a batch), whereas a whole-split shuffle
  mixed any two; training still reads windows in a fresh random order every epoch, so this
  only limits which CDS sit side by side in a window. The windows depend on the seed, the
  batch size and the pool, never on the shard size.
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
from dnalm.core.artifacts import META_JSON
from dnalm.core.errors import ConfigError, DnalmError
from dnalm.core.io import default_file_mode, read_fasta, refuse_overwrite
from dnalm.core.log import progress_disabled
from dnalm.kinds.tokenizers import TOKENIZER_KINDS, reads_frame
from dnalm.tokenization.build import load_tokenizer
from dnalm.tokenization.shards import ShardWriter, token_dtype
from dnalm.tokenization.tokenizers import DnaTokenizer, replace_dir

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
PACKINGS = ("packed", "padded")
#: 2: windows in shards ({split}/shard-NNNNN.*.npy, see dnalm.tokenization.shards)
FORMAT_VERSION = 2
#: sequences are read, encoded and shuffled in batches of about this many nucleotides; with
#: the packing pool and the shard buffer this bounds the memory of a build
BATCH_NT = 4_000_000
#: default tokens per shard file (corpus.shard_tokens)
SHARD_TOKENS = 1 << 23


def _records(paths: Sequence[str | os.PathLike], bar: tqdm) -> Iterator[tuple[str, str]]:
    """(name, sequence) of every record of `paths`, streamed; name = 'path:line id'."""
    for path in paths:
        for header, seq, lineno in read_fasta(path):
            ident = header.split(maxsplit=1)[0] if header else "<no id>"
            bar.update(len(seq))
            yield f"{path}:{lineno} {ident}", seq


def _batches(
    paths: Sequence[str | os.PathLike], min_length: int, stats: dict[str, Any], bar: tqdm
) -> Iterator[tuple[list[str], list[str]]]:
    """Kept (sequences, names) in batches of about BATCH_NT nucleotides; counts drops."""
    seqs: list[str] = []
    names: list[str] = []
    batch_nt = 0
    for name, seq in _records(paths, bar):
        stats["n_input_sequences"] += 1
        if len(seq) < min_length:
            stats["n_dropped_short"] += 1
            continue
        stats["n_sequences"] += 1
        seqs.append(seq)
        names.append(name)
        batch_nt += len(seq)
        if batch_nt >= BATCH_NT:
            yield seqs, names
            seqs, names, batch_nt = [], [], 0
    if seqs:
        yield seqs, names


def lowercase_flags(
    tok: DnaTokenizer, seqs: Sequence[str], ids: np.ndarray, off: np.ndarray
) -> tuple[np.ndarray | None, int]:
    """Per token of ``ids, off = tok.encode_concat(seqs)``: 1 where the token covers at least
    one lower-case (soft-masked) nucleotide of its sequence, uint8; None when no sequence
    has lower case. Also returns the number of lower-case nucleotides."""
    raw = np.frombuffer("".join(seqs).encode("ascii"), dtype=np.uint8)
    low = raw >= ord("a")  # validated IUPAC letters: lower case is a..z
    n_low = int(np.count_nonzero(low))
    if not n_low:
        return None, 0
    cl = np.zeros(raw.size + 1, dtype=np.int64)
    np.cumsum(low, out=cl[1:])
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    seq_start = np.cumsum(lengths) - lengths
    ntok = np.diff(off)
    kind = TOKENIZER_KINDS.get(tok.type)
    if kind.overlapping:  # token j of a sequence covers [j, j + width)
        span = np.full(ids.size, kind.nt_per_token(tok.spec), dtype=np.int64)
        a = np.arange(ids.size, dtype=np.int64) + np.repeat(seq_start - off[:-1], ntok)
    else:  # consecutive tokens tile their sequence from its start
        span = tok.token_lengths(ids)
        a = np.cumsum(span) - span
        if ids.size:
            first = a[np.minimum(off[:-1], ids.size - 1)]
            a += np.repeat(np.where(ntok > 0, seq_start - first, 0), ntok)
    return (cl[a + span] - cl[a] > 0).astype(np.uint8), n_low


def _encode_batch(tok, seqs, names, rc, stats):
    """Encode one batch (and its reverse complements when `rc`). Returns the ids, the token
    count of each sequence and the per-token lower-case flags (None: no lower case)."""
    todo = [(seqs, names)]
    if rc:
        todo.append(([reverse_complement(s) for s in seqs], [f"{n} (rev. comp.)" for n in names]))
        stats["n_rc_added"] += len(seqs)
    parts, counts, flags = [], [], []
    for ss, nn in todo:
        ids, off = tok.encode_concat(ss, nn)
        low, n_low = lowercase_flags(tok, ss, ids, off)
        parts.append(ids)
        counts.append(np.diff(off))
        flags.append(low)
        lengths = np.fromiter((len(x) for x in ss), dtype=np.int64, count=len(ss))
        if reads_frame(tok.type):
            stats["n_trimmed_partial_codon"] += int(np.count_nonzero(lengths % 3))
            lengths -= lengths % 3
        stats["nucleotides"] += int(lengths.sum())
        stats["n_lowercase_nt"] += n_low
    ids = np.concatenate(parts)
    if all(f is None for f in flags):
        low = None
    else:
        low = np.concatenate(
            [
                np.zeros(p.size, np.uint8) if f is None else f
                for p, f in zip(parts, flags, strict=True)
            ]
        )
    return ids, np.concatenate(counts), low


def _segments(ids, low, counts, bos, eos, block, dtype):
    """Lay out ``BOS ids EOS`` per sequence in one flat array (and its flags) and cut it
    into chunks of at most `block` tokens. Returns (flat, flat_low, chunk_start, chunk_len,
    n_chunked_sequences)."""
    nb, ne = int(bos is not None), int(eos is not None)
    n = counts.size
    full_len = counts + nb + ne  # (n,)
    full_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(full_len, out=full_off[1:])
    flat = np.empty(int(full_off[-1]), dtype=dtype)
    content = np.ones(flat.size, dtype=bool)
    if nb:
        flat[full_off[:-1]] = bos
        content[full_off[:-1]] = False
    if ne:
        flat[full_off[1:] - 1] = eos
        content[full_off[1:] - 1] = False
    flat[content] = ids
    flat_low = None
    if low is not None:  # a special token covers no nucleotide
        flat_low = np.zeros(flat.size, dtype=np.uint8)
        flat_low[content] = low
    n_chunks = -(-full_len // block)  # ceil
    r = np.repeat(np.arange(n), n_chunks)
    j = np.arange(int(n_chunks.sum())) - np.repeat(np.cumsum(n_chunks) - n_chunks, n_chunks)
    start = full_off[r] + j * block
    length = np.minimum(block, full_len[r] - j * block)
    return flat, flat_low, start, length, int(np.count_nonzero(n_chunks > 1))


class _Packer:
    """First-fit over a bounded pool of open windows (``packed``) or one chunk per window
    (``padded``). A window leaves the pool (and goes to the ShardWriter) when it is full,
    when it is the fullest and a segment needs a window that none has room for, or at the
    end of the split; so memory is the pool, whatever the input size."""

    def __init__(self, writer: ShardWriter, block: int, pool: int, packed: bool, dtype, pad):
        self.w, self.block, self.packed, self.pad = writer, block, packed, pad
        self.rem = np.full(pool, -1, dtype=np.int64)  # room left per slot; -1: free slot
        self.tok = np.full((pool, block), pad, dtype=dtype)  # (P, B)
        self.pos = np.zeros((pool, block), dtype=np.uint16)  # (P, B)
        self.low = np.zeros((pool, block), dtype=np.uint8)  # (P, B)
        self.ar = np.arange(block, dtype=np.uint16)
        self.row_tok = np.full(block, pad, dtype=dtype)
        self.row_pos = np.zeros(block, dtype=np.uint16)
        self.row_low = np.zeros(block, dtype=np.uint8)

    def _close(self, j: int) -> None:
        self.w.add(self.tok[j], self.pos[j], self.low[j], self.block - int(self.rem[j]))
        self.tok[j] = self.pad
        self.pos[j] = 0
        self.low[j] = 0
        self.rem[j] = -1

    def add(self, flat, flat_low, start, length) -> None:
        """Place the chunks flat[start[i]:start[i] + length[i]], in the given order."""
        block, rem = self.block, self.rem
        for a, n in zip(start.tolist(), length.tolist(), strict=True):
            seg = flat[a : a + n]
            seg_low = flat_low[a : a + n] if flat_low is not None else 0
            if not self.packed or n == block:  # a window of its own
                self.row_tok[:n], self.row_pos[:n], self.row_low[:n] = seg, self.ar[:n], seg_low
                self.row_tok[n:], self.row_pos[n:], self.row_low[n:] = self.pad, 0, 0
                self.w.add(self.row_tok, self.row_pos, self.row_low, n)
                continue
            fits = np.flatnonzero(rem >= n)
            if fits.size:
                j = int(fits[0])
            else:
                free = np.flatnonzero(rem < 0)
                if free.size:
                    j = int(free[0])
                else:  # close the fullest
                    j = int(np.argmin(rem))
                    self._close(j)
                rem[j] = block
            o = block - int(rem[j])
            self.tok[j, o : o + n] = seg
            self.pos[j, o : o + n] = self.ar[:n]
            self.low[j, o : o + n] = seg_low
            rem[j] -= n
            if rem[j] == 0:
                self._close(j)

    def finish(self) -> None:
        for j in np.flatnonzero(self.rem >= 0):
            self._close(int(j))


def _build_split(tok, paths, split, tmp, opts) -> dict[str, Any]:
    """Stream one split: read, encode, cut, shuffle within a batch, pack, write shards."""
    stats: dict[str, Any] = {
        "files": [str(p) for p in paths],
        "n_input_sequences": 0,
        "n_sequences": 0,
        "n_dropped_short": 0,
        "n_rc_added": 0,
        "nucleotides": 0,
        "n_lowercase_nt": 0,
    }
    if reads_frame(tok.type):
        stats["n_trimmed_partial_codon"] = 0
    block, dtype = opts["block_size"], opts["dtype"]
    writer = ShardWriter(tmp, split, block, opts["shard_windows"], dtype, tok.pad_id)
    packer = _Packer(
        writer, block, opts["pool_size"], opts["packing"] == "packed", dtype, tok.pad_id
    )
    rng = np.random.default_rng(opts["seed"])
    n_tok = n_content = n_unk = n_low_tok = n_seg = n_chunked = 0
    bar = tqdm(desc=f"{split}: building", unit="nt", unit_scale=True, disable=progress_disabled())
    try:
        for seqs, names in _batches(paths, opts["min_length"], stats, bar):
            ids, counts, low = _encode_batch(tok, seqs, names, opts["rc"], stats)
            if np.any(counts == 0):  # pragma: no cover - cannot happen after min_length
                raise AssertionError(f"{split}: a sequence gave no tokens")
            special = tok.is_special(ids)
            if tok.unk_id is not None:
                unk = ids == tok.unk_id
                n_unk += int(np.count_nonzero(unk))
                special &= ~unk
            n_content += int(ids.size - np.count_nonzero(special))
            if low is not None:
                n_low_tok += int(np.count_nonzero(low))
            flat, flat_low, start, length, nch = _segments(
                ids, low, counts, tok.bos_id, tok.eos_id, block, dtype
            )
            del ids, low
            order = rng.permutation(length.size)  # the shuffle buffer is the batch
            packer.add(flat, flat_low, start[order], length[order])
            n_tok += int(length.sum())
            n_seg += int(length.size)
            n_chunked += nch
        packer.finish()
        writer.close()
    finally:
        bar.close()
    n_win = writer.n_windows
    nt = stats["nucleotides"]
    stats.update(
        n_windows=n_win,
        n_tokens=n_tok,
        n_content_tokens=n_content,
        n_unk=n_unk,
        n_segments=n_seg,
        n_chunked_sequences=n_chunked,
        nt_per_token=(nt / n_content) if n_content else None,
        pad_fraction=(1.0 - n_tok / (n_win * block)) if n_win else None,
        has_lowercase=writer.any_lowercase,
        n_lowercase_tokens=n_low_tok,
        lowercase_fraction=(stats["n_lowercase_nt"] / nt) if nt else 0.0,
        lowercase_token_fraction=(n_low_tok / n_content) if n_content else 0.0,
        n_shards=len(writer.shards),
        shards=writer.shards,
    )
    return stats


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
    shard_tokens: int = SHARD_TOKENS,
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
        shard_tokens: tokens per shard file (rounded down to whole windows, at least one);
            it decides only where windows are cut into files, never the windows.

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
    if isinstance(shard_tokens, bool) or not isinstance(shard_tokens, int) or shard_tokens < 1:
        raise ConfigError(f"corpus.shard_tokens must be a positive integer, got {shard_tokens!r}")
    if rc_augment and reads_frame(tok.type):
        raise ConfigError(
            f"corpus: rc_augment is not allowed with the {tok.type} tokenizer: the reverse "
            "complement of a CDS is not a CDS read in frame; set rc_augment: false for it"
        )
    if tok.pad_id is None:  # pragma: no cover - every dnalm scheme has one
        raise ConfigError("corpus: the tokenizer has no padding token")
    min_eff = max(min_length, tok.min_tokenizable_length, 1)
    dtype = token_dtype(tok.vocab_size)
    shard_windows = max(1, shard_tokens // block_size)

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
        "pool_size": pool_size,
        "batch_nt": BATCH_NT,
        "shard_tokens": shard_tokens,
        "shard_windows": shard_windows,
        "dtype": np.dtype(dtype).name,
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
            opts = {
                "block_size": block_size,
                "dtype": dtype,
                "shard_windows": shard_windows,
                "pool_size": pool_size,
                "packing": packing,
                "seed": seed,
                "min_length": min_eff,
                "rc": bool(rc_augment) and split == "train",
            }
            stats = _build_split(tok, list(split_fastas[split]), split, tmp, opts)
            meta["splits"].append(split)
            meta[split] = stats
            n_win = stats["n_windows"]
            log.info(
                "%s: %d sequences (%d dropped < %d nt, %d RC added) -> %d windows of %d in %d "
                "shard(s), %.1f%% padding, %.2f nt/token, %.1f%% lower-case nt",
                split,
                stats["n_sequences"],
                stats["n_dropped_short"],
                min_eff,
                stats["n_rc_added"],
                n_win,
                block_size,
                stats["n_shards"],
                100 * (stats["pad_fraction"] or 0.0),
                stats["nt_per_token"] or 0.0,
                100 * stats["lowercase_fraction"],
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
        (tmp / META_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


__all__ = ["PACKINGS", "SHARD_TOKENS", "SPLITS", "build_corpus", "lowercase_flags"]


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
    p.add_argument("--shard-tokens", type=int, default=SHARD_TOKENS, help="tokens per shard")

    def run(args) -> int:
        refuse_overwrite(
            {
                "TOKENIZER": args.tokenizer,
                "--train": args.train,
                "--validation": args.validation,
                "--test": args.test,
            },
            {"OUT_DIR": args.out_dir},
            ["OUT_DIR"],
        )
        meta = build_corpus(
            args.tokenizer,
            {"train": args.train, "validation": args.validation, "test": args.test},
            args.out_dir,
            block_size=args.block_size,
            packing=args.packing,
            rc_augment=args.rc_augment,
            min_length=args.min_length,
            seed=args.seed,
            shard_tokens=args.shard_tokens,
        )
        for split in meta["splits"]:
            s = meta[split]
            print(f"{split}: {s['n_windows']} windows, {s['n_tokens']} tokens")
        return 0

    p.set_defaults(func=run)
