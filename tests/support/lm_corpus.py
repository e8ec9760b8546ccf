"""A small synthetic pretraining corpus in the corpus contract's format-1 layout (one
`{split}.tokens.npy`/`positions.npy` pair per split, which load_split still reads beside the
sharded layout dnalm.tokenization.corpus writes now), for the model,
training and inference tests (independent of dnalm.tokenization.tokenizers /
dnalm.tokenization.corpus).

Vocabulary: [PAD] [UNK] [BOS] [EOS] [MASK] A C G T N (ids 0-9), a WordLevel tokenizer that
splits a DNA string into single nucleotides. Sequences come from a fixed first-order Markov
chain with a strong preference, so that a model can learn something in a few steps; each is
encoded as [BOS] nts [EOS] and packed into windows whose position ids restart at 0 per
sequence (a sequence longer than a window continues in the next with position ids from 0)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SPECIALS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "[MASK]"]
NUCS = ["A", "C", "G", "T", "N"]
VOCAB = {tok: i for i, tok in enumerate(SPECIALS + NUCS)}
PAD, UNK, BOS, EOS, MASK = range(5)


def save_tokenizer(folder: Path) -> Path:
    """Write a nucleotide WordLevel tokenizer folder loadable by AutoTokenizer (no
    dnalm_tokenizer.json: code under test takes the plain transformers path)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab=VOCAB, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", BOS), ("[EOS]", EOS)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        bos_token="[BOS]",
        eos_token="[EOS]",
        mask_token="[MASK]",
    )
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(folder))
    return folder


def markov_sequences(n: int, rng: np.random.Generator, min_len=20, max_len=90) -> list[str]:
    trans = np.full((4, 4), 0.05)
    for i in range(4):
        trans[i, (i + 1) % 4] = 0.85
    seqs = []
    for _ in range(n):
        length = int(rng.integers(min_len, max_len))
        s = [int(rng.integers(4))]
        for _ in range(length - 1):
            s.append(int(rng.choice(4, p=trans[s[-1]])))
        seqs.append("".join("ACGT"[i] for i in s))
    return seqs


def pack(seqs: list[str], block: int) -> tuple[np.ndarray, np.ndarray]:
    rows_t, rows_p = [], []
    cur_t, cur_p = [], []
    for seq in seqs:
        ids = [BOS, *(VOCAB[c] for c in seq), EOS]
        pos = 0
        for tid in ids:
            if len(cur_t) == block:
                rows_t.append(cur_t)
                rows_p.append(cur_p)
                cur_t, cur_p, pos = [], [], 0
            cur_t.append(tid)
            cur_p.append(pos)
            pos += 1
    if cur_t:
        pad = block - len(cur_t)
        rows_t.append(cur_t + [PAD] * pad)
        rows_p.append(cur_p + [0] * pad)
    return np.array(rows_t, dtype=np.uint16), np.array(rows_p, dtype=np.uint16)


def make_corpus(
    folder: Path, block_size: int = 32, n_seqs=(120, 30, 30), seed: int = 0, empty=()
) -> Path:
    """Write `folder` with {split}.tokens.npy/positions.npy, meta.json and tokenizer/."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    meta = {
        "tokenizer": "nuc",
        "tokenizer_hash": "test-nuc",
        "vocab_size": len(VOCAB),
        "block_size": block_size,
        "packing": "packed",
        "pad_id": PAD,
        "unk_id": UNK,
        "bos_id": BOS,
        "eos_id": EOS,
        "sep_id": None,
        "mask_id": MASK,
    }
    for split, n in zip(("train", "validation", "test"), n_seqs, strict=True):
        seqs = [] if split in empty else markov_sequences(n, rng)
        if seqs:
            tokens, positions = pack(seqs, block_size)
        else:
            tokens = positions = np.zeros((0, block_size), dtype=np.uint16)
        np.save(folder / f"{split}.tokens.npy", tokens)
        np.save(folder / f"{split}.positions.npy", positions)
        nt = sum(len(s) for s in seqs)
        meta[split] = {
            "n_windows": int(tokens.shape[0]),
            "n_tokens": int((tokens != PAD).sum()),
            "n_sequences": len(seqs),
            "n_dropped_short": 0,
            "nt_per_token": 1.0,
            "nucleotides": nt,
        }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    save_tokenizer(folder / "tokenizer")
    return folder
