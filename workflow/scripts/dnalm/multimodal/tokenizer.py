"""DNATextTokenizer: sentences with DNA inside ``<dna>...</dna>`` in one id space.

Layout of the unified vocabulary (DeepEmbed-DNABERT's scheme):

* ids ``0 .. T-1`` are the text vocabulary (a WordPiece built from the corpus text, the
  same in every process, or a Hugging Face ``tokenizer.json`` folder with BERT special
  tokens). The special tokens
  ``[PAD] [UNK] [CLS] [SEP] [MASK]`` and the two tags ``<dna>`` and ``</dna>`` are text
  tokens; they are **shared**: a sentence is ``[CLS] ... [SEP]`` whatever it holds, padding
  is the text ``[PAD]`` and masking uses the text ``[MASK]`` for both modalities.
* ids ``T .. T+D-1`` are the DNA tokenizer's ids shifted by the offset ``T`` (the text
  vocabulary size). The DNA tokenizer's own special tokens keep their shifted ids but are
  never produced by :meth:`DNATextTokenizer.encode`.

``encode`` returns ``input_ids``, ``modality_mask`` (1 for a DNA token, 0 for text, tags and
specials) and ``attention_mask`` (1 for every real token). DNA is upper-cased, U becomes T
and IUPAC ambiguity codes become N (as the DNA tokenizers do); any other character inside
``<dna>...</dna>`` is an :class:`~dnalm.core.errors.InputFormatError` naming the sentence
and the character's 0-based position in it. An empty ``<dna></dna>`` gives the two tags and
no DNA token. A ``<dna>`` without its ``</dna>`` (or a stray ``</dna>``) is an error.

``decode`` rebuilds the sentence: the DNA exactly as normalised, the text as the text
tokenizer decodes it (WordPiece lower-cases and re-spaces punctuation), the tags around
each DNA span.

``encode_batch`` is the fast path: it encodes every text piece of every sentence in one
``tokenizers`` batch call and every DNA piece in one DNA batch call
(``benchmarks/bench_dnatext_tokenizer.py`` measures it against a loop of ``encode``).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import (
    AddedToken,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
)

from dnalm.core.alphabet import IUPAC
from dnalm.core.artifacts import DNATEXT_TOKENIZER_JSON, TOKENIZER_JSON
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.tokenization.build import load_tokenizer

FORMAT_VERSION = 1
DNA_OPEN, DNA_CLOSE = "<dna>", "</dna>"
TEXT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_TAG = re.compile(r"<dna>|</dna>")
_BAD_DNA = re.compile(f"[^{IUPAC}{IUPAC.lower()}]")


def train_wordpiece(texts: Iterable[str], vocab_size: int = 2000, min_frequency: int = 2):
    """A WordPiece ``tokenizers.Tokenizer`` (BERT normaliser with lower case, BERT
    pre-tokenizer) built from `texts`, with the shared specials and the two tags.

    The vocabulary is the same in every process: the specials, every character of the
    corpus alone and as a ``##`` continuation (sorted), then whole words seen at least
    `min_frequency` times, most frequent first (ties alphabetical), up to `vocab_size`.
    (``tokenizers``' WordPieceTrainer breaks ties between equally frequent characters and
    pairs in hash order, so its vocabulary, and every DNA+text result after it, changed from
    one process to the next.) A word outside the vocabulary is split greedily, longest
    piece first, down to its characters."""
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    specials = [*TEXT_SPECIALS, DNA_OPEN, DNA_CLOSE]
    chars = sorted({c for word in counts for c in word})
    pieces = [*specials, *chars, *(f"##{c}" for c in chars)]
    seen = set(pieces)
    for word, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(pieces) >= vocab_size or n < min_frequency:
            break
        if word not in seen:
            pieces.append(word)
            seen.add(word)
    vocab = {piece: i for i, piece in enumerate(pieces)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens([AddedToken(s, special=True) for s in specials])
    return tok


def load_text_tokenizer_json(folder: str | os.PathLike):
    """The ``tokenizers.Tokenizer`` of a Hugging Face tokenizer folder (its tokenizer.json),
    with the two DNA tags added as special tokens. It must hold the BERT specials."""
    path = Path(folder) / TOKENIZER_JSON
    if not path.is_file():
        raise ConfigError(f"text tokenizer folder {folder} has no tokenizer.json")
    tok = Tokenizer.from_file(str(path))
    vocab = tok.get_vocab(with_added_tokens=True)
    missing = [t for t in TEXT_SPECIALS if t not in vocab]
    if missing:
        raise ConfigError(f"text tokenizer {path} lacks the special tokens {missing}")
    tok.add_special_tokens([AddedToken(t, special=True) for t in (DNA_OPEN, DNA_CLOSE)])
    return tok


class DNATextTokenizer:
    """Text tokenizer (``tokenizers.Tokenizer``) + DNA tokenizer (``DnaTokenizer``) in one
    id space (module docstring)."""

    def __init__(self, text_tok: Any, dna_tok: Any, model_max_length: int = 512) -> None:
        self.text = text_tok
        self.dna = dna_tok
        self.model_max_length = int(model_max_length)
        vocab = text_tok.get_vocab(with_added_tokens=True)
        for t in (*TEXT_SPECIALS, DNA_OPEN, DNA_CLOSE):
            if t not in vocab:
                raise ConfigError(f"the text tokenizer has no {t!r} token")
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (
            int(vocab[t]) for t in TEXT_SPECIALS
        )
        self.open_id, self.close_id = int(vocab[DNA_OPEN]), int(vocab[DNA_CLOSE])
        self.offset = int(text_tok.get_vocab_size(with_added_tokens=True))
        self.text_vocab_size = self.offset
        self.dna_vocab_size = int(dna_tok.vocab_size)
        self.vocab_size = self.offset + self.dna_vocab_size
        self._text_tokens = [""] * self.offset
        for t, i in vocab.items():
            self._text_tokens[i] = t
        specials = {self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id}
        self.special_ids = sorted(specials | {self.open_id, self.close_id})
        #: unified id -> True for a WordPiece continuation piece (``##...``)
        self.is_continuation = np.zeros(self.vocab_size, dtype=bool)
        for i, t in enumerate(self._text_tokens):
            self.is_continuation[i] = t.startswith("##")

    # ---- encoding -----------------------------------------------------------------------

    @staticmethod
    def split(sentence: str, name: str = "sentence") -> list[tuple[str, str, int]]:
        """The pieces of `sentence` as (kind, text, start) with kind 'text' or 'dna'; raises
        InputFormatError for unbalanced tags or a bad character inside DNA."""
        pieces: list[tuple[str, str, int]] = []
        pos, inside, start = 0, False, 0
        for m in _TAG.finditer(sentence):
            tag = m.group(0)
            if (tag == DNA_OPEN) == inside:
                raise InputFormatError(
                    f"{name}: unexpected {tag} at position {m.start()} "
                    f"({'nested <dna>' if inside else '</dna> without <dna>'})"
                )
            piece = sentence[pos : m.start()]
            if inside:
                bad = _BAD_DNA.search(piece)
                if bad:
                    raise InputFormatError(
                        f"{name}: character {bad.group(0)!r} at position "
                        f"{pos + bad.start()} inside <dna>...</dna> (started at {start}) is "
                        f"not a nucleotide letter ({IUPAC})"
                    )
                pieces.append(("dna", piece, pos))
            elif piece:
                pieces.append(("text", piece, pos))
            pieces.append(("tag", tag, m.start()))
            inside, pos, start = not inside, m.end(), m.start()
        if inside:
            raise InputFormatError(f"{name}: <dna> at position {start} is never closed")
        if pos < len(sentence):
            pieces.append(("text", sentence[pos:], pos))
        return pieces

    def encode(
        self, sentence: str, add_special_tokens: bool = True, name: str = "sentence"
    ) -> dict[str, np.ndarray]:
        """input_ids / modality_mask / attention_mask of one sentence (int64 arrays)."""
        return self.encode_batch([sentence], add_special_tokens, names=[name])[0]

    def encode_batch(
        self,
        sentences: Sequence[str],
        add_special_tokens: bool = True,
        names: Sequence[str] | None = None,
    ) -> list[dict[str, np.ndarray]]:
        """:meth:`encode` of many sentences with one text and one DNA batch call."""
        names = (
            list(names)
            if names is not None
            else [f"sentence {i + 1}" for i in range(len(sentences))]
        )
        split = [self.split(s, n) for s, n in zip(sentences, names, strict=True)]
        texts = [p[1] for ps in split for p in ps if p[0] == "text"]
        dnas = [p[1] for ps in split for p in ps if p[0] == "dna"]
        text_ids = [e.ids for e in self.text.encode_batch(texts, add_special_tokens=False)]
        dna_flat, dna_off = (
            self.dna.encode_concat(dnas) if dnas else (np.zeros(0, np.uint16), np.zeros(1, int))
        )
        dna_flat = dna_flat.astype(np.int64) + self.offset
        it, idna = 0, 0
        out = []
        for ps in split:
            ids: list[np.ndarray] = []
            mods: list[np.ndarray] = []
            if add_special_tokens:
                ids.append(np.array([self.cls_id]))
                mods.append(np.zeros(1, np.int64))
            for kind, _text, _start in ps:
                if kind == "text":
                    part = np.asarray(text_ids[it], np.int64)
                    it += 1
                    mod = np.zeros(part.size, np.int64)
                elif kind == "dna":
                    part = dna_flat[dna_off[idna] : dna_off[idna + 1]]
                    idna += 1
                    mod = np.ones(part.size, np.int64)
                else:
                    part = np.array([self.open_id if _text == DNA_OPEN else self.close_id])
                    mod = np.zeros(1, np.int64)
                ids.append(part)
                mods.append(mod)
            if add_special_tokens:
                ids.append(np.array([self.sep_id]))
                mods.append(np.zeros(1, np.int64))
            a = np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, np.int64)
            m = np.concatenate(mods) if mods else np.zeros(0, np.int64)
            out.append({"input_ids": a, "modality_mask": m, "attention_mask": np.ones_like(a)})
        return out

    def pad(
        self, encs: Sequence[dict[str, np.ndarray]], max_length: int | None = None
    ) -> dict[str, np.ndarray]:
        """Right-pad (and cut to `max_length`, keeping the final [SEP]) into int64 arrays."""
        cap = max_length or self.model_max_length
        n = min(cap, max(len(e["input_ids"]) for e in encs))
        out = {k: np.zeros((len(encs), n), np.int64) for k in encs[0]}
        out["input_ids"][:] = self.pad_id
        for i, e in enumerate(encs):
            for k, v in e.items():
                if len(v) > n:
                    v = np.concatenate([v[: n - 1], v[-1:]])
                out[k][i, : len(v)] = v
        return out

    # ---- decoding -----------------------------------------------------------------------

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """The sentence of unified `ids` (module docstring)."""
        ids = [int(i) for i in ids]
        parts: list[str] = []
        run: list[int] = []
        run_dna = False

        def flush() -> None:
            if not run:
                return
            if run_dna:
                parts.append(self.dna.decode(np.array(run) - self.offset))
            else:
                parts.append(self.text.decode(run, skip_special_tokens=skip_special_tokens))
            run.clear()

        for i in ids:
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} out of range [0, {self.vocab_size})")
            if i in (self.open_id, self.close_id):
                flush()
                tag = DNA_OPEN if i == self.open_id else DNA_CLOSE
                parts.append((" " if parts and i == self.open_id else "") + tag)
                if i == self.close_id:
                    parts.append(" ")
                continue
            dna = i >= self.offset
            if dna != run_dna:
                flush()
                run_dna = dna
            run.append(i)
        flush()
        return re.sub(r" +", " ", "".join(parts)).strip()

    def token(self, i: int) -> str:
        """The token string of unified id `i` (DNA tokens as their bases)."""
        if i >= self.offset:
            return self.dna.id_to_token(i - self.offset)
        return self._text_tokens[i]

    def dna_token_strings(self) -> list[str]:
        """The DNA vocabulary's token strings in DNA-id order (specials as their names)."""
        return [self.dna.id_to_token(i) for i in range(self.dna_vocab_size)]

    def dna_special_ids(self) -> list[int]:
        """The DNA tokenizer's special ids (unshifted)."""
        return sorted({v for v in self.dna.special_ids.values() if v is not None})

    # ---- persistence --------------------------------------------------------------------

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write ``text/tokenizer.json``, ``dna/`` (the DNA tokenizer folder) and
        ``dnatext_tokenizer.json`` (offset, tags, specials) into `out_dir`."""
        out = Path(out_dir)
        (out / "text").mkdir(parents=True, exist_ok=True)
        self.text.save(str(out / "text" / TOKENIZER_JSON))
        self.dna.save(out / "dna")
        meta = {
            "format_version": FORMAT_VERSION,
            "offset": self.offset,
            "text_vocab_size": self.text_vocab_size,
            "dna_vocab_size": self.dna_vocab_size,
            "tags": [DNA_OPEN, DNA_CLOSE],
            "specials": dict(zip(TEXT_SPECIALS, self.special_ids[:5], strict=False)),
            "model_max_length": self.model_max_length,
            "dna_hash": self.dna.hash,
        }
        (out / DNATEXT_TOKENIZER_JSON).write_text(
            json.dumps(meta, indent=2) + "\n", encoding="utf-8"
        )
        return out

    @classmethod
    def load(cls, folder: str | os.PathLike) -> DNATextTokenizer:
        """Restore a folder written by :meth:`save`; checks the recorded offset."""
        folder = Path(folder)
        meta_path = folder / DNATEXT_TOKENIZER_JSON
        if not meta_path.is_file():
            raise ConfigError(
                f"{folder} is not a DNA+text tokenizer folder (no {DNATEXT_TOKENIZER_JSON})"
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        tok = cls(
            Tokenizer.from_file(str(folder / "text" / TOKENIZER_JSON)),
            load_tokenizer(folder / "dna"),
            meta.get("model_max_length", 512),
        )
        if tok.offset != meta["offset"] or tok.dna_vocab_size != meta["dna_vocab_size"]:
            raise ConfigError(f"{meta_path}: the saved vocabularies do not match its offset")
        return tok
