"""The builders of the tokenizer kinds, one :class:`~dnalm.tokenization.tokenizers.DnaTokenizer`
subclass per kind of :data:`dnalm.kinds.tokenizers.TOKENIZER_KINDS` (its ``type`` is the kind's
name): nucleotide (optionally case-keeping), non-overlapping k-mer (Nucleotide Transformer),
overlapping k-mer (DNABERT), codon, and BPE (DNABERT-2). Each class builds its
``tokenizers`` object (``backend``) and encodes with NumPy; what the rest of the workflow
needs to know about a kind (widths, mask span, reverse complement, ...) is its descriptor's."""

from __future__ import annotations

from typing import Any

import numpy as np
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

from dnalm.core.alphabet import CODE_TO_BASE, kmer_names
from dnalm.core.errors import ConfigError
from dnalm.tokenization.tokenizers import (
    BERT_ORDER,
    CODON_ORDER,
    LUT_N,
    LUT_SEP,
    DnaTokenizer,
    finish_backend,
    invalid_char_error,
    wordlevel,
)


class NucleotideTokenizer(DnaTokenizer):
    """One token per base (A C G T N; with keep_case also a c g t n)."""

    type = "nucleotide"

    @classmethod
    def backend(cls, spec, train_sequences=None):
        letters = list("ACGTN") + (list("acgtn") if spec["keep_case"] else [])
        tok = wordlevel(letters, cls)
        tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
        return finish_backend(tok, cls, keep_case=spec["keep_case"])

    def __init__(self, spec: dict, tok: Any) -> None:
        super().__init__(spec, tok)
        lut = np.full(256, 0xFFFF, dtype=np.uint16)
        norm = self._norm_lut
        for b in range(256):
            if norm[b]:
                lut[b] = self._vocab[chr(norm[b])]
        self._id_lut = lut

    def encode_concat(self, seqs, names=None):
        seqs = list(seqs)
        arr = self._ascii(seqs, names, "")
        ids = self._id_lut[arr]  # (n_nt,) uint16
        if ids.size and ids.max() == 0xFFFF:
            raise invalid_char_error(seqs, names, int(np.flatnonzero(ids == 0xFFFF)[0]), 0)
        off = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum([len(s) for s in seqs], out=off[1:])
        return ids, off

    def token_lengths(self, ids):
        return (~self._is_special[np.asarray(ids, np.int64)]).astype(np.int64)

    def decode(self, ids, skip_special_tokens=True):
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if skip_special_tokens and ids.size and ids.min() >= 0 and ids.max() < self.vocab_size:
            # fast path: a byte table
            if not hasattr(self, "_dec_bytes"):
                tb = np.zeros(self.vocab_size, dtype=np.uint8)
                for i, t in enumerate(self._id_to_token):
                    if len(t) == 1:
                        tb[i] = ord(t)
                tb[self.unk_id] = ord("N")
                self._dec_bytes = tb
            keep = ~self._is_special[ids] | (ids == self.unk_id)
            return self._dec_bytes[ids[keep]].tobytes().decode("ascii")
        return super().decode(ids, skip_special_tokens)


class KmerTokenizer(DnaTokenizer):
    """Non-overlapping k-mers with single-base fallback (see the module docstring)."""

    type = "kmer"

    @classmethod
    def backend(cls, spec, train_sequences=None):
        k = spec["k"]
        kmers = kmer_names(k) if k > 1 else []
        tok = wordlevel(list("ACGTN") + kmers, cls)
        pattern = f"[ACGT]{{{k}}}|[ACGTN]" if k > 1 else "."
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
        return finish_backend(tok, cls)

    def __init__(self, spec: dict, tok: Any) -> None:
        super().__init__(spec, tok)
        self.k = int(spec["k"])
        self._single_off = self._vocab["A"]  # A C G T N are consecutive
        self._kmer_off = self._vocab["A" * self.k] if self.k > 1 else self._single_off

    def encode_concat(self, seqs, names=None):
        seqs = list(seqs)
        k = self.k
        codes = self._codes(seqs, names, "\x00")  # (n,) with LUT_SEP between sequences
        n = codes.size
        if not seqs:
            return np.zeros(0, np.uint16), np.zeros(1, np.int64)
        if k == 1:  # every base is a single token; 1-mers are the singles
            keep = codes != LUT_SEP
            ids = (codes[keep] + self._single_off).astype(np.uint16)
            off = np.zeros(len(seqs) + 1, dtype=np.int64)
            np.cumsum([len(s) for s in seqs], out=off[1:])
            return ids, off
        brk = np.flatnonzero(codes >= LUT_N)  # N or separator: ends a run of A/C/G/T
        ends = np.append(brk, n)  # run r is [starts[r], ends[r]); ends[r] is a break
        starts = np.concatenate(([0], brk + 1))
        run_len = ends - starts
        q = run_len // k  # k-mers per run
        t = run_len - q * k  # single-base tail per run
        brk_code = codes[brk]
        is_n = np.append(brk_code == LUT_N, False)  # the break after run r is an N token
        cnt = q + t + is_n
        off_run = np.zeros(cnt.size + 1, dtype=np.int64)
        np.cumsum(cnt, out=off_run[1:])
        out = np.empty(int(off_run[-1]), dtype=np.uint16)
        # k-mers
        n_k = int(q.sum())
        if n_k:
            r = np.repeat(np.arange(q.size), q)
            j = np.arange(n_k) - np.repeat(np.cumsum(q) - q, q)
            pos = starts[r] + j * k
            val = np.zeros(n_k, dtype=np.int64)
            for jj in range(k):
                val = val * 4 + codes[pos + jj]
            out[off_run[r] + j] = val + self._kmer_off
        # tails
        n_t = int(t.sum())
        if n_t:
            r = np.repeat(np.arange(t.size), t)
            j = np.arange(n_t) - np.repeat(np.cumsum(t) - t, t)
            out[off_run[r] + q[r] + j] = codes[starts[r] + q[r] * k + j] + self._single_off
        # N tokens
        rn = np.flatnonzero(is_n)
        out[off_run[rn] + q[rn] + t[rn]] = self._single_off + LUT_N
        # sequence ends: the runs followed by a separator, and the last run
        seq_end_run = np.append(np.flatnonzero(brk_code == LUT_SEP), q.size - 1)
        off = np.zeros(len(seqs) + 1, dtype=np.int64)
        off[1:] = off_run[seq_end_run] + q[seq_end_run] + t[seq_end_run]
        return out, off

    def token_lengths(self, ids):
        ids = np.asarray(ids, np.int64)
        lens = np.where(ids >= self._kmer_off, self.k, 1)
        lens[self._is_special[ids]] = 0
        if self.unk_id is not None:
            lens[ids == self.unk_id] = 1
        return lens.astype(np.int64)


class OverlappingKmerTokenizer(DnaTokenizer):
    """All k-length windows at stride 1 (DNABERT-1); windows with N are UNK."""

    type = "kmer_overlapping"

    @classmethod
    def backend(cls, spec, train_sequences=None):
        tok = wordlevel(kmer_names(spec["k"]), cls)
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        # no Fuse decoder: hf().decode gives the space-separated windows (DNABERT convention)
        return finish_backend(tok, cls, fuse=False)

    def __init__(self, spec: dict, tok: Any) -> None:
        super().__init__(spec, tok)
        self.k = int(spec["k"])
        self.min_tokenizable_length = self.k
        self._kmer_off = self._vocab["A" * self.k]

    def hf_text(self, seq: str) -> str:
        k = self.k
        return " ".join(seq[i : i + k] for i in range(len(seq) - k + 1))

    def encode_concat(self, seqs, names=None):
        seqs = list(seqs)
        k = self.k
        codes = self._codes(seqs, names, "\x00")
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        counts = np.maximum(lengths - k + 1, 0)
        off = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(counts, out=off[1:])
        n = codes.size
        if n < k or off[-1] == 0:
            return np.zeros(0, np.uint16), off
        m = n - k + 1  # windows over the concatenation, some straddle a separator
        sent = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(codes == LUT_SEP, out=sent[1:])
        nn = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(codes == LUT_N, out=nn[1:])
        keep = sent[k:] == sent[:m]  # window [p, p + k) has no separator
        has_n = nn[k:] != nn[:m]
        low = codes & 3  # N/separator values are masked by has_n/keep anyway
        val = np.zeros(m, dtype=np.uint16)  # 4^7 < 2^16
        for j in range(k):
            val = val * np.uint16(4) + low[j : j + m]
        ids = np.where(has_n, np.uint16(self.unk_id), val + np.uint16(self._kmer_off))
        ids = ids[keep].astype(np.uint16)
        assert ids.size == off[-1]
        return ids, off

    def decode(self, ids, skip_special_tokens=True):
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if not skip_special_tokens:
            return " ".join(self._id_to_token[ids].tolist())
        ids = ids[~self._is_special[ids] | (ids == self.unk_id)]
        if ids.size == 0:
            return ""
        k = self.k
        bases = np.full(ids.size + k - 1, ord("N"), dtype=np.uint8)
        ok = ids != self.unk_id
        val = ids[ok] - self._kmer_off
        idx = np.flatnonzero(ok)
        for j in range(k):
            bases[idx + j] = CODE_TO_BASE[(val // 4 ** (k - 1 - j)) % 4]
        return bases.tobytes().decode("ascii")

    def token_lengths(self, ids):
        ids = np.asarray(ids, np.int64)
        lens = np.full(ids.size, self.k, np.int64)
        lens[self._is_special[ids] & (ids != self.unk_id)] = 0
        return lens

    def base_to_token_index(self, seq, name=None):
        """Base i maps to the window centred on it, ``clip(i - k // 2, 0, n - k)``
        (the first and last bases map to the first and last windows); -1 if n < k."""
        self.normalize(seq, name)  # validation only
        n, k = len(seq), self.k
        if n < k:
            return np.full(n, -1, np.int64)
        return np.clip(np.arange(n, dtype=np.int64) - k // 2, 0, n - k)


class CodonTokenizer(DnaTokenizer):
    """In-frame codons; a codon with N is UNK; a trailing partial codon is dropped."""

    type = "codon"
    special_order = CODON_ORDER
    min_tokenizable_length = 3

    @classmethod
    def backend(cls, spec, train_sequences=None):
        tok = wordlevel(kmer_names(3), cls)
        # in-frame triplets; a trailing 1-2 nt remainder matches nothing and is removed
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(".{3}"), behavior="removed", invert=True)
        return finish_backend(tok, cls)

    @classmethod
    def special_tokens(cls):
        return {
            "pad": "<PAD>",
            "unk": "<UNK>",
            "cls": None,
            "sep": "<SEP>",
            "mask": "<MASK>",
            "bos": "<BOS_CDS>",
            "eos": "<EOS_CDS>",
        }

    def __init__(self, spec: dict, tok: Any) -> None:
        super().__init__(spec, tok)
        self._codon_off = self._vocab["AAA"]

    def encode_concat(self, seqs, names=None):
        seqs = list(seqs)
        codes = self._codes(seqs, names, "")
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        n_codons = lengths // 3
        off = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(n_codons, out=off[1:])
        total = int(off[-1])
        if total == 0:
            return np.zeros(0, np.uint16), off
        if np.all(lengths % 3 == 0):
            c = codes.reshape(-1, 3)  # (n_codons, 3)
        else:  # gather the in-frame codon starts of each sequence
            seq_start = np.cumsum(lengths) - lengths
            r = np.repeat(np.arange(len(seqs)), n_codons)
            j = np.arange(total) - np.repeat(off[:-1], n_codons)
            pos = seq_start[r] + 3 * j
            c = np.stack([codes[pos], codes[pos + 1], codes[pos + 2]], axis=1)
        c = c.astype(np.uint16)
        val = c[:, 0] * 16 + c[:, 1] * 4 + c[:, 2] + self._codon_off
        amb = (c[:, 0] | c[:, 1] | c[:, 2]) >= LUT_N  # N is 0b100, bases are <= 0b011
        return np.where(amb, np.uint16(self.unk_id), val).astype(np.uint16), off

    def _token_text(self):
        table = super()._token_text()
        table[self.unk_id] = "NNN"
        return table

    def token_lengths(self, ids):
        ids = np.asarray(ids, np.int64)
        lens = np.full(ids.size, 3, np.int64)
        lens[self._is_special[ids] & (ids != self.unk_id)] = 0
        return lens


class BpeTokenizer(DnaTokenizer):
    """Byte-pair encoding trained on the training split (DNABERT-2 style)."""

    type = "bpe"

    @classmethod
    def backend(cls, spec, train_sequences=None):
        if train_sequences is None:
            raise ConfigError("a bpe tokenizer must be trained: pass train_sequences")
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        # validate and normalise the training text with the NumPy path of a throwaway instance
        checker = finish_backend(wordlevel(list("ACGTN"), NucleotideTokenizer), NucleotideTokenizer)
        norm = NucleotideTokenizer({"type": "nucleotide", "keep_case": False}, checker)
        budget = spec["max_train_nt"]

        def _texts():
            used = 0
            for i, s in enumerate(train_sequences):
                if budget is not None and used >= budget:
                    break
                if not s:
                    continue
                used += len(s)
                yield norm.normalize(s, f"training sequence #{i + 1}")

        trainer = trainers.BpeTrainer(
            vocab_size=spec["vocab_size"],
            min_frequency=spec["min_frequency"],
            special_tokens=list(BERT_ORDER),
            initial_alphabet=list("ACGTN"),
            show_progress=False,
        )
        tok.train_from_iterator(_texts(), trainer=trainer)
        missing = [c for c in "ACGTN" if c not in tok.get_vocab()]
        if missing:  # pragma: no cover - initial_alphabet guarantees them
            raise AssertionError(f"BPE vocabulary lacks {missing}")
        tok = finish_backend(tok, cls)
        if tok.get_vocab_size() <= len(BERT_ORDER) + 5:
            raise ConfigError(
                "BPE training produced no merges: the training sequences are empty or too "
                "few for min_frequency; check the training split"
            )
        return tok

    @property
    def has_numpy_path(self) -> bool:
        return False

    def encode_concat(self, seqs, names=None):
        seqs = list(seqs)
        # validate + normalise with NumPy, then tokenize the normalised text
        texts: list[str] = []
        if seqs:
            self._codes(seqs, names, "\x00")  # raises for non-IUPAC characters
            arr = self._ascii(seqs, names, "\x00")
            texts = self._norm_lut[arr].tobytes().decode("ascii").split("\x00")
        encs = self._tok.encode_batch(texts, add_special_tokens=False)
        parts = [np.asarray(e.ids, dtype=np.uint16) for e in encs]
        off = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum([p.size for p in parts], out=off[1:])
        ids = np.concatenate(parts) if parts else np.zeros(0, np.uint16)
        return ids.astype(np.uint16), off

    def token_lengths(self, ids):
        ids = np.asarray(ids, np.int64)
        lens = np.array([len(t) for t in self._id_to_token], dtype=np.int64)
        lens[self._special_ids] = 0
        if self.unk_id is not None:
            lens[self.unk_id] = 1
        return lens[ids]

    def base_to_token_index(self, seq, name=None):
        """From the ``tokenizers`` offsets of the normalised sequence."""
        norm = self.normalize(seq, name)
        enc = self._tok.encode(norm, add_special_tokens=False)
        out = np.full(len(seq), -1, np.int64)
        for i, (a, b) in enumerate(enc.offsets):
            out[a:b] = i
        return out


#: tokenizer type (the spec's ``type``) -> class
CLASSES: dict[str, type[DnaTokenizer]] = {
    c.type: c
    for c in (
        NucleotideTokenizer,
        KmerTokenizer,
        OverlappingKmerTokenizer,
        CodonTokenizer,
        BpeTokenizer,
    )
}
