"""DNA tokenizers: nucleotide, non-overlapping k-mer, overlapping k-mer, codon and BPE.

Every tokenizer exists twice, and the two must agree token for token:

* a Hugging Face ``tokenizer.json`` (library ``tokenizers``), saved with
  ``tokenizer_config.json`` and ``special_tokens_map.json`` so that
  ``transformers.AutoTokenizer.from_pretrained(folder)`` loads it offline and a trained model
  folder carries the exact tokenizer it was trained with;
* for the fixed vocabularies (nucleotide, kmer, kmer_overlapping, codon) a vectorised NumPy
  encoder (bytes -> lookup table -> uint16 ids), 20-200x faster on one core (see
  benchmarks/bench_tokenize.py), used for bulk work such as
  building the pretraining corpus. ``tests/test_tokenization_tokenizers.py`` proves with
  hypothesis that
  both paths give the same ids.

Input normalisation (both paths): letters are upper-cased (unless ``keep_case`` for the
nucleotide tokenizer, which keeps soft-masked lower case as its own tokens), U becomes T,
and the IUPAC ambiguity codes R Y S W K M B D H V become N. Any other character (gap '-',
'*', digits, non-ASCII, ...) is an error naming the sequence and the 1-based position in the
NumPy path (in the ``tokenizer.json`` path it becomes the unknown token). An empty sequence
encodes to no tokens.

The schemes, with the vocabulary layout (ids are fixed, so models trained with the same
spec share ids):

``nucleotide``
    ``[PAD] [UNK] [CLS] [SEP] [MASK]`` = 0..4, then A C G T N = 5..9 and, with
    ``keep_case: true``, a c g t n = 10..14. One token per base.
``kmer`` (non-overlapping, Nucleotide-Transformer style), option ``k`` (1..7, default 6)
    specials 0..4, single bases A C G T N = 5..9, then the 4^k k-mers in lexicographic
    A<C<G<T order (id = 10 + base-4 value). Reading left to right, a k-mer token is emitted
    when the next k bases are all A/C/G/T; otherwise the next base becomes a single-base
    token. So within each stretch free of N the k-mers are read from the stretch start, the
    last (length mod k) bases of the stretch become single bases, every N is a single token,
    and k-mer reading restarts right after an N. Examples with k = 6::

        ATGGTAGCTACATCATCT     -> ATGGTA GCTACA TCATCT          (with specials: [CLS] first)
        ATGGTAGCNTACATCATCTGA  -> ATGGTA G C N TACATC ATCTGA
        ATGGTAGCTACATCATCTGAC  -> ATGGTA GCTACA TCATCT G A C    (tail shorter than k)

    In ``tokenizer.json`` this is a ``Split`` pre-tokenizer with the regex
    ``[ACGT]{k}|[ACGTN]`` (leftmost match, first alternative preferred, isolated pieces)
    followed by a ``WordLevel`` model.
``kmer_overlapping`` (DNABERT-1 style), option ``k`` (1..7, default 6)
    specials 0..4 then the 4^k k-mers (id = 5 + base-4 value). The tokens are all k-length
    windows at stride 1 (n - k + 1 tokens for n >= k bases; none for n < k); a window
    containing N is ``[UNK]``. ``decode`` rebuilds the sequence (first window plus the last
    base of every following one; bases covered only by ``[UNK]`` windows come back as N).
    ``tokenizer.json`` cannot produce overlapping pieces (pre-tokenizers partition the text),
    so, as in DNABERT, its input is the sequence written as space-separated k-mers:
    ``DnaTokenizer.hf_text(seq)`` produces that text, and ``AutoTokenizer`` users must do
    the same. ``hf().decode`` returns the space-separated k-mers.
``codon``
    ``<PAD> <UNK> <BOS_CDS> <EOS_CDS> <SEP> <MASK>`` = 0..5, then the 64 codons in
    lexicographic order (id = 6 + base-4 value). The sequence is read in frame from its
    first base. A codon containing N (or an ambiguity code) is ``<UNK>`` (the CDS is not
    split), so ``decode(encode(s)) == s`` holds only for unambiguous input; ``<UNK>`` decodes
    to NNN. A trailing partial codon (length not a multiple of 3) is dropped: those 1-2
    bases get no token (``base_to_token_index`` gives -1 for them) and the corpus builder
    counts such sequences in ``meta.json`` (``n_trimmed_partial_codon``).
``bpe`` (DNABERT-2 style), options ``vocab_size`` (default 4096), ``min_frequency``
    (default 2), ``max_train_nt`` (default: all)
    byte-pair encoding trained with ``tokenizers`` on the training split, one word per
    sequence, initial alphabet A C G T N, specials 0..4 as for ``nucleotide``. The trained
    vocabulary can end up smaller than ``vocab_size`` when no pair is frequent enough.
    No NumPy path: ``encode`` validates and normalises in NumPy, then calls ``tokenizers``.

Special tokens: for all but codon, BOS is ``[CLS]`` and EOS is ``[SEP]`` (BERT layout);
``encode(seq, add_special_tokens=True)`` and the ``tokenizer.json`` post-processor give
``BOS tokens EOS`` (pairs: ``BOS A SEP B EOS``).

Every spec may also set ``model_max_length`` (default 1024), written to
``tokenizer_config.json``; it does not enter the hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, processors

from dnalm.core.alphabet import AMBIGUITY, IUPAC
from dnalm.core.artifacts import DNALM_TOKENIZER_JSON, SPECIAL_TOKENS_MAP_JSON, TOKENIZER_JSON
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import default_file_mode
from dnalm.kinds.tokenizers import (
    MAX_UINT16_VOCAB,
    tokenizer_kind,
)

FORMAT_VERSION = 1

# Codes used inside the NumPy encoders for the upper-case schemes.
LUT_N = 4  # N (and every ambiguity code)
LUT_SEP = 5  # separator between sequences in a concatenated batch
_BAD = 255  # not an IUPAC letter

_BERT_SPECIALS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}
BERT_ORDER = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CODON_ORDER = ["<PAD>", "<UNK>", "<BOS_CDS>", "<EOS_CDS>", "<SEP>", "<MASK>"]


#: ids looked up per block in DnaTokenizer.is_special (bounds the 64-bit index copy)
_LOOKUP_BLOCK = 1 << 20


def _upper_code_lut() -> np.ndarray:
    """byte -> code: A/a 0, C/c 1, G/g 2, T/t/U/u 3, N/n and ambiguity codes 4, NUL 5
    (batch separator), anything else 255."""
    lut = np.full(256, _BAD, dtype=np.uint8)
    for ch, code in (("A", 0), ("C", 1), ("G", 2), ("T", 3), ("U", 3), ("N", LUT_N)):
        lut[ord(ch)] = lut[ord(ch.lower())] = code
    for ch in AMBIGUITY:
        lut[ord(ch)] = lut[ord(ch.lower())] = LUT_N
    lut[0] = LUT_SEP
    return lut


def _normalise_lut(keep_case: bool) -> np.ndarray:
    """byte -> normalised byte (0 = invalid)."""
    lut = np.zeros(256, dtype=np.uint8)
    for ch in "ACGTN":
        lut[ord(ch)] = ord(ch)
        lut[ord(ch.lower())] = ord(ch.lower() if keep_case else ch)
    lut[ord("U")] = ord("T")
    lut[ord("u")] = ord("t" if keep_case else "T")
    for ch in AMBIGUITY:
        lut[ord(ch)] = ord("N")
        lut[ord(ch.lower())] = ord("n" if keep_case else "N")
    return lut


_CODE_LUT = _upper_code_lut()


def _seq_label(names: Sequence[str] | None, i: int) -> str:
    return repr(names[i]) if names is not None else f"#{i + 1} of the batch"


def invalid_char_error(
    seqs: Sequence[str], names: Sequence[str] | None, flat_pos: int, sep_len: int
) -> InputFormatError:
    """Build the error for the invalid character at `flat_pos` of `sep.join(seqs)`."""
    pos = flat_pos
    for i, s in enumerate(seqs):
        if pos < len(s):
            ch = s[pos]
            return InputFormatError(
                f"sequence {_seq_label(names, i)}: character {ch!r} at position {pos + 1} "
                f"(1-based) is not an IUPAC nucleotide code ({IUPAC}, either case); fix or "
                "drop this sequence in the input FASTA"
            )
        pos -= len(s) + sep_len
    raise AssertionError("invalid position outside the batch")  # pragma: no cover


def _canonical_json(text: str) -> str:
    obj = json.loads(text)
    for runtime_key in ("padding", "truncation"):
        obj.pop(runtime_key, None)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def tokenizer_json_hash(text: str) -> str:
    """sha256 of a ``tokenizer.json`` text, made stable: parsed and re-dumped with sorted
    keys, without the runtime ``padding``/``truncation`` settings."""
    return hashlib.sha256(_canonical_json(text).encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------------------
# building blocks of the ``tokenizers`` objects (each kind's ``backend`` assembles them)


def hf_normalizer(keep_case: bool):
    """The ``tokenizers`` normaliser that matches the NumPy normalisation."""
    if keep_case:
        steps = [
            normalizers.Replace("U", "T"),
            normalizers.Replace("u", "t"),
            normalizers.Replace(Regex(f"[{AMBIGUITY}]"), "N"),
            normalizers.Replace(Regex(f"[{AMBIGUITY.lower()}]"), "n"),
        ]
    else:
        steps = [
            normalizers.Replace(Regex("[Uu]"), "T"),
            normalizers.Replace(Regex(f"[{AMBIGUITY}{AMBIGUITY.lower()}]"), "N"),
        ] + [normalizers.Replace(c, c.upper()) for c in "acgtn"]
    return normalizers.Sequence(steps)


def finish_backend(tok, cls: type[DnaTokenizer], keep_case: bool = False, fuse: bool = True):
    """Add normaliser, special tokens, post-processor and decoder to a Tokenizer."""
    roles = cls.special_tokens()
    tok.normalizer = hf_normalizer(keep_case)
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in cls.special_order]
    )
    vocab = tok.get_vocab(with_added_tokens=True)
    bos, eos, sep = roles["bos"], roles["eos"], roles["sep"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A:0 {eos}",
        pair=f"{bos}:0 $A:0 {sep}:0 $B:1 {eos}:1",
        special_tokens=[(t, vocab[t]) for t in dict.fromkeys((bos, eos, sep))],
    )
    if fuse:
        tok.decoder = decoders.Fuse()
    return tok


def wordlevel(vocab_tokens: list[str], cls: type[DnaTokenizer]):
    """A WordLevel Tokenizer with the specials of `cls` first, then `vocab_tokens`."""
    order = cls.special_order
    vocab = {t: i for i, t in enumerate([*order, *vocab_tokens])}
    assert len(vocab) == len(order) + len(vocab_tokens), "duplicate token"
    if len(vocab) > MAX_UINT16_VOCAB:
        raise ConfigError(f"vocabulary of {len(vocab)} tokens does not fit uint16 ids")
    unk = cls.special_tokens()["unk"]
    return Tokenizer(models.WordLevel(vocab, unk_token=unk))


# ----------------------------------------------------------------------------------------
# the tokenizer classes


class DnaTokenizer:
    """A DNA tokenizer: a ``tokenizers.Tokenizer`` plus, for fixed vocabularies, a NumPy
    encoder that gives the same ids. Build one with :func:`build_tokenizer`, restore a saved
    one with :func:`load_tokenizer`.

    Ids are ``np.uint16`` arrays. ``encode`` adds no special tokens unless asked."""

    #: the kind's name (a key of dnalm.kinds.tokenizers.TOKENIZER_KINDS)
    type: ClassVar[str] = ""
    #: the special tokens, in id order (they come first in the vocabulary)
    special_order: ClassVar[list[str]] = BERT_ORDER
    keep_case: bool = False
    #: smallest sequence length (nt) that yields at least one token
    min_tokenizable_length: int = 1

    @classmethod
    def backend(cls, spec: dict, train_sequences: Iterable[str] | None = None) -> Any:
        """The ``tokenizers.Tokenizer`` of a normalised `spec` of this kind (a trained kind
        learns it from `train_sequences`, the fixed ones ignore them)."""
        raise NotImplementedError(cls.type)

    def __init__(self, spec: dict, tok: Any) -> None:
        self.spec = spec
        kind = tokenizer_kind(self.type)
        self.keep_case = bool(kind and kind.keeps_case(spec))
        self._tok = tok  # tokenizers.Tokenizer
        self._hf = None
        vocab = tok.get_vocab(with_added_tokens=True)
        self._vocab = vocab
        self._id_to_token = np.empty(len(vocab), dtype=object)
        for t, i in vocab.items():
            self._id_to_token[i] = t
        roles = self.special_tokens()
        for role in ("pad", "unk", "cls", "sep", "mask", "bos", "eos"):
            t = roles.get(role)
            setattr(self, f"{role}_id", None if t is None else int(vocab[t]))
        self._special_ids = np.array(
            sorted({vocab[t] for t in roles.values() if t is not None}), dtype=np.int64
        )
        self._is_special = np.zeros(len(vocab), dtype=bool)
        self._is_special[self._special_ids] = True
        self._norm_lut = _normalise_lut(self.keep_case)

    # ---- description -------------------------------------------------------------------

    pad_id: int | None
    unk_id: int | None
    cls_id: int | None
    sep_id: int | None
    mask_id: int | None
    bos_id: int | None
    eos_id: int | None

    @classmethod
    def special_tokens(cls) -> dict[str, str | None]:
        """Role -> special token string (None where the scheme has no such token)."""
        return {**_BERT_SPECIALS, "bos": "[CLS]", "eos": "[SEP]"}

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    @property
    def special_ids(self) -> dict[str, int | None]:
        return {
            f"{r}_id": getattr(self, f"{r}_id")
            for r in ("pad", "unk", "bos", "eos", "sep", "mask", "cls")
        }

    @property
    def hash(self) -> str:
        """Stable sha256 of the tokenizer.json content (see :func:`tokenizer_json_hash`)."""
        return tokenizer_json_hash(self._tok.to_str())

    @property
    def has_numpy_path(self) -> bool:
        return True

    def id_to_token(self, token_id: int) -> str:
        """The token string of one id."""
        return str(self._id_to_token[int(token_id)])

    def is_special(self, ids: np.ndarray) -> np.ndarray:
        """Boolean mask of the special-token ids in `ids` (UNK counts as special). Looked
        up in blocks, so a large uint16 array is never copied whole into 64-bit indices."""
        ids = np.asarray(ids)
        if ids.size <= _LOOKUP_BLOCK:
            return self._is_special[ids.astype(np.intp, copy=False)]
        flat = ids.reshape(-1)
        out = np.empty(flat.size, dtype=bool)
        for i in range(0, flat.size, _LOOKUP_BLOCK):
            out[i : i + _LOOKUP_BLOCK] = self._is_special[flat[i : i + _LOOKUP_BLOCK]]
        return out.reshape(ids.shape)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, vocab_size={self.vocab_size})"

    # ---- normalisation -----------------------------------------------------------------

    def normalize(self, seq: str, name: str | None = None) -> str:
        """Upper-case (unless keep_case), U -> T, ambiguity codes -> N; raises
        InputFormatError naming `name` and the position for a non-IUPAC character."""
        if not seq:
            return ""
        arr = self._ascii([seq], None if name is None else [name], "")
        out = self._norm_lut[arr]
        if not out.all():
            raise invalid_char_error(
                [seq], None if name is None else [name], int(np.flatnonzero(out == 0)[0]), 0
            )
        return out.tobytes().decode("ascii")

    @staticmethod
    def _ascii(seqs: Sequence[str], names: Sequence[str] | None, sep: str) -> np.ndarray:
        joined = sep.join(seqs)
        try:
            raw = joined.encode("ascii")
        except UnicodeEncodeError as e:
            raise invalid_char_error(seqs, names, e.start, len(sep)) from None
        return np.frombuffer(raw, dtype=np.uint8)

    def _codes(self, seqs: Sequence[str], names: Sequence[str] | None, sep: str) -> np.ndarray:
        """Concatenate `seqs` (joined by `sep`, '' or NUL) and map bytes to codes 0..5,
        raising for characters outside IUPAC (including a NUL inside a sequence)."""
        arr = self._ascii(seqs, names, sep)
        codes = _CODE_LUT[arr]
        bad = codes == _BAD
        if sep:
            n_sent = int(np.count_nonzero(codes == LUT_SEP))
            if n_sent != max(len(seqs) - 1, 0):  # a NUL inside a sequence
                for i, s in enumerate(seqs):
                    if "\x00" in s:
                        pos = sum(len(x) + 1 for x in seqs[:i]) + s.index("\x00")
                        raise invalid_char_error(seqs, names, pos, 1)
        elif len(seqs) and np.any(codes == LUT_SEP):
            bad |= codes == LUT_SEP
        if bad.any():
            raise invalid_char_error(seqs, names, int(np.flatnonzero(bad)[0]), len(sep))
        return codes

    # ---- encoding ----------------------------------------------------------------------

    def encode_concat(
        self, seqs: Sequence[str], names: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encode many sequences at once (no special tokens). Returns the concatenated ids
        (uint16) and offsets (int64, len(seqs) + 1): the tokens of sequence i are
        ``ids[offsets[i]:offsets[i + 1]]``. This is the bulk path the corpus builder uses."""
        raise NotImplementedError

    def encode(
        self, seq: str, name: str | None = None, add_special_tokens: bool = False
    ) -> np.ndarray:
        """Token ids of one sequence, uint16 (no specials unless `add_special_tokens`, then
        ``BOS ... EOS`` as the tokenizer.json post-processor does)."""
        ids, _ = self.encode_concat([seq], None if name is None else [name])
        if add_special_tokens:
            ids = self._add_specials(ids)
        return ids

    def encode_batch(
        self,
        seqs: Sequence[str],
        names: Sequence[str] | None = None,
        add_special_tokens: bool = False,
    ) -> list[np.ndarray]:
        """List of uint16 id arrays, one per sequence (views into one buffer)."""
        seqs = list(seqs)
        ids, off = self.encode_concat(seqs, names)
        out = [ids[off[i] : off[i + 1]] for i in range(len(seqs))]
        if add_special_tokens:
            out = [self._add_specials(x) for x in out]
        return out

    def _add_specials(self, ids: np.ndarray) -> np.ndarray:
        head = [] if self.bos_id is None else [self.bos_id]
        tail = [] if self.eos_id is None else [self.eos_id]
        return np.concatenate(
            [np.array(head, np.uint16), ids.astype(np.uint16), np.array(tail, np.uint16)]
        )

    def hf_text(self, seq: str) -> str:
        """The text to give the tokenizer.json / AutoTokenizer path for `seq` (the sequence
        itself; space-separated k-mers for kmer_overlapping)."""
        return seq

    def encode_hf(self, seqs: Sequence[str], add_special_tokens: bool = False) -> list[np.ndarray]:
        """Reference path: encode with the ``tokenizers`` library (tokenizer.json) alone."""
        encs = self._tok.encode_batch(
            [self.hf_text(s) for s in seqs], add_special_tokens=add_special_tokens
        )
        return [np.asarray(e.ids, dtype=np.uint16) for e in encs]

    # ---- decoding ----------------------------------------------------------------------

    def _token_text(self) -> np.ndarray:
        """id -> text used by decode for content tokens (UNK -> N per base)."""
        table = self._id_to_token.copy()
        if self.unk_id is not None:
            table[self.unk_id] = "N"
        return table

    def decode(self, ids: Iterable[int] | np.ndarray, skip_special_tokens: bool = True) -> str:
        """Sequence text of `ids`. Special tokens are dropped (or written as their token
        strings with ``skip_special_tokens=False``); UNK decodes to N per base it stands
        for."""
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"token id out of range [0, {self.vocab_size})")
        table = self._token_text()
        if skip_special_tokens:
            keep = ~self._is_special[ids]
            if self.unk_id is not None:
                keep |= ids == self.unk_id
            ids = ids[keep]
        else:
            table[self._special_ids] = self._id_to_token[self._special_ids]
        return "".join(table[ids].tolist())

    # ---- per-base mapping --------------------------------------------------------------

    def token_lengths(self, ids: np.ndarray) -> np.ndarray:
        """Nucleotides spanned by each token (0 for specials), int64."""
        raise NotImplementedError

    def base_to_token_index(self, seq: str, name: str | None = None) -> np.ndarray:
        """For each base of `seq`, the index (into ``encode(seq)``, no specials) of the token
        that covers it; -1 for bases no token covers. int64, length len(seq)."""
        ids = self.encode(seq, name)
        lens = self.token_lengths(ids)
        out = np.repeat(np.arange(ids.size, dtype=np.int64), lens)
        if out.size < len(seq):
            out = np.concatenate([out, np.full(len(seq) - out.size, -1, np.int64)])
        return out

    # ---- HF objects and persistence ----------------------------------------------------

    def tokenizers_object(self):
        """The underlying ``tokenizers.Tokenizer``."""
        return self._tok

    def hf(self):
        """A ``transformers.PreTrainedTokenizerFast`` with the special tokens declared."""
        if self._hf is None:
            # lazy: transformers (~2 s) only for a transformers tokenizer (tokenization: no torch)
            from transformers import PreTrainedTokenizerFast

            roles = self.special_tokens()
            kwargs = {f"{r}_token": t for r, t in roles.items() if t is not None}
            self._hf = PreTrainedTokenizerFast(
                tokenizer_object=self._tok.__class__.from_str(self._tok.to_str()),
                model_max_length=self.spec["model_max_length"],
                **kwargs,
            )
        return self._hf

    def save(self, out_dir: str | os.PathLike) -> Path:
        """Write the tokenizer folder (tokenizer.json, tokenizer_config.json,
        special_tokens_map.json, dnalm_tokenizer.json) atomically: it is assembled in a
        temporary folder beside `out_dir` and renamed into place (replacing an older one)."""
        out_dir = Path(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".part", dir=out_dir.parent))
        os.chmod(tmp, default_file_mode(directory=True))  # mkdtemp gives 0700
        try:
            self.hf().save_pretrained(str(tmp))
            text = self._tok.to_str(pretty=True)
            (tmp / TOKENIZER_JSON).write_text(text, encoding="utf-8")
            roles = self.special_tokens()
            stm = {f"{r}_token": t for r, t in roles.items() if t is not None}
            (tmp / SPECIAL_TOKENS_MAP_JSON).write_text(
                json.dumps(stm, indent=2) + "\n", encoding="utf-8"
            )
            meta = {
                "format_version": FORMAT_VERSION,
                "type": self.type,
                "spec": self.spec,
                "hash": tokenizer_json_hash(text),
                "vocab_size": self.vocab_size,
                "special_ids": self.special_ids,
                "special_tokens": roles,
            }
            (tmp / DNALM_TOKENIZER_JSON).write_text(
                json.dumps(meta, indent=2) + "\n", encoding="utf-8"
            )
            replace_dir(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out_dir


def replace_dir(tmp: Path, final: Path) -> None:
    """Rename `tmp` to `final`, replacing an existing folder (moved aside, then deleted)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old.{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


__all__ = [
    "DnaTokenizer",
    "finish_backend",
    "hf_normalizer",
    "tokenizer_json_hash",
    "wordlevel",
]
