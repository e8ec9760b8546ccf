"""Building, training (BPE) and loading tokenizer folders, and the ``dnalm tokenizer``
subcommand."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

from dnalm.core.alphabet import kmer_names
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import read_fasta
from dnalm.tokenization.kinds import CLASSES, BpeTokenizer, CodonTokenizer, NucleotideTokenizer
from dnalm.tokenization.tokenizers import (
    AMBIGUITY,
    BERT_ORDER,
    CODON_ORDER,
    DNALM_FILE,
    MAX_UINT16_VOCAB,
    DnaTokenizer,
    normalise_spec,
    tokenizer_json_hash,
)


def _normalizer(keep_case: bool):
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


def _finish(tok, cls: type[DnaTokenizer], keep_case: bool = False, fuse: bool = True):
    """Add normaliser, special tokens, post-processor and decoder to a Tokenizer."""
    roles = cls.special_tokens()
    tok.normalizer = _normalizer(keep_case)
    order = CODON_ORDER if cls is CodonTokenizer else BERT_ORDER
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in order])
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


def _wordlevel(vocab_tokens: list[str], cls: type[DnaTokenizer]):
    order = CODON_ORDER if cls is CodonTokenizer else BERT_ORDER
    vocab = {t: i for i, t in enumerate([*order, *vocab_tokens])}
    assert len(vocab) == len(order) + len(vocab_tokens), "duplicate token"
    if len(vocab) > MAX_UINT16_VOCAB:
        raise ConfigError(f"vocabulary of {len(vocab)} tokens does not fit uint16 ids")
    unk = cls.special_tokens()["unk"]
    return Tokenizer(models.WordLevel(vocab, unk_token=unk))


def _build_fixed(spec: dict):
    kind = spec["type"]
    cls = CLASSES[kind]
    if kind == "nucleotide":
        letters = list("ACGTN") + (list("acgtn") if spec["keep_case"] else [])
        tok = _wordlevel(letters, cls)
        tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
        return _finish(tok, cls, keep_case=spec["keep_case"])
    if kind == "kmer":
        k = spec["k"]
        kmers = kmer_names(k) if k > 1 else []
        tok = _wordlevel(list("ACGTN") + kmers, cls)
        pattern = f"[ACGT]{{{k}}}|[ACGTN]" if k > 1 else "."
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
        return _finish(tok, cls)
    if kind == "kmer_overlapping":
        tok = _wordlevel(kmer_names(spec["k"]), cls)
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        # no Fuse decoder: hf().decode gives the space-separated windows (DNABERT convention)
        return _finish(tok, cls, fuse=False)
    if kind == "codon":
        tok = _wordlevel(kmer_names(3), cls)
        # in-frame triplets; a trailing 1-2 nt remainder matches nothing and is removed
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(".{3}"), behavior="removed", invert=True)
        return _finish(tok, cls)
    raise AssertionError(kind)  # pragma: no cover


def _train_bpe(spec: dict, train_sequences: Iterable[str]):
    cls = BpeTokenizer
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    # validate and normalise the training text with the NumPy path of a throwaway instance
    checker = _finish(_wordlevel(list("ACGTN"), NucleotideTokenizer), NucleotideTokenizer)
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
    return _finish(tok, cls)


def build_tokenizer(spec: dict, train_sequences: Iterable[str] | None = None) -> DnaTokenizer:
    """Build the tokenizer described by `spec` (see the module docstring). BPE needs
    `train_sequences` (the training split); the fixed vocabularies ignore them."""
    spec = normalise_spec(spec)
    if spec["type"] == "bpe":
        if train_sequences is None:
            raise ConfigError("a bpe tokenizer must be trained: pass train_sequences")
        tok = _train_bpe(spec, train_sequences)
        if tok.get_vocab_size() <= len(BERT_ORDER) + 5:
            raise ConfigError(
                "BPE training produced no merges: the training sequences are empty or too "
                "few for min_frequency; check the training split"
            )
    else:
        tok = _build_fixed(spec)
    return CLASSES[spec["type"]](spec, tok)


def train_bpe(
    fasta_paths: Iterable[str | os.PathLike],
    vocab_size: int,
    out_dir: str | os.PathLike | None = None,
    **options: Any,
) -> DnaTokenizer:
    """Train a BPE tokenizer on the sequences of FASTA files (plain or gzip) and save it to
    `out_dir` if given."""
    return make_tokenizer(
        {"type": "bpe", "vocab_size": vocab_size, **options}, out_dir, train_fastas=fasta_paths
    )


def make_tokenizer(
    spec: dict,
    out_dir: str | os.PathLike | None = None,
    train_fastas: Iterable[str | os.PathLike] | None = None,
) -> DnaTokenizer:
    """Workflow entry point: build (training BPE on `train_fastas`) and save to `out_dir`."""
    seqs = None
    if normalise_spec(spec)["type"] == "bpe":
        if train_fastas is None:
            raise ConfigError("a bpe tokenizer needs training FASTA files")
        paths = list(train_fastas)
        seqs = (s for p in paths for _h, s, _l in read_fasta(p))
    tokenizer = build_tokenizer(spec, seqs)
    if out_dir is not None:
        tokenizer.save(out_dir)
    return tokenizer


def load_tokenizer(path: str | os.PathLike | DnaTokenizer) -> DnaTokenizer:
    """Restore a tokenizer saved by :meth:`DnaTokenizer.save`. Checks that tokenizer.json
    still has the recorded hash and, for fixed vocabularies, the expected vocabulary."""
    if isinstance(path, DnaTokenizer):
        return path
    folder = Path(path)
    meta_path = folder / DNALM_FILE
    if not meta_path.is_file():
        raise InputFormatError(
            f"{folder}: no {DNALM_FILE}; this is not a dnalm tokenizer folder (build it with "
            "the tokenizer rule or dnalm.tokenization.tokenizers.make_tokenizer)"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    text = (folder / "tokenizer.json").read_text(encoding="utf-8")
    digest = tokenizer_json_hash(text)
    if digest != meta.get("hash"):
        raise InputFormatError(
            f"{folder}/tokenizer.json: content hash {digest[:12]} differs from the one in "
            f"{DNALM_FILE} ({str(meta.get('hash'))[:12]}); the file was edited or replaced; "
            "rebuild the tokenizer folder"
        )
    spec = normalise_spec(meta["spec"])
    tok = Tokenizer.from_str(text)
    if spec["type"] != "bpe":
        expected = _build_fixed(spec).get_vocab(with_added_tokens=True)
        if tok.get_vocab(with_added_tokens=True) != expected:
            raise InputFormatError(
                f"{folder}/tokenizer.json: vocabulary differs from the {spec['type']} spec "
                f"{spec}; rebuild the tokenizer folder"
            )
    return CLASSES[spec["type"]](spec, tok)


def register(subparsers) -> None:
    """`dnalm tokenizer`: build a tokenizer folder (BPE trains on the given FASTA files)."""
    p = subparsers.add_parser("tokenizer", help="build and save a tokenizer folder")
    p.add_argument("out_dir", help="folder to write (tokenizer.json and friends)")
    p.add_argument(
        "--spec",
        required=True,
        help='tokenizer spec as JSON, e.g. \'{"type": "kmer", "k": 6}\' (see config/README.md)',
    )
    p.add_argument("--train-fasta", nargs="*", default=None, help="training FASTA files (bpe)")

    def run(args) -> int:
        try:
            spec = json.loads(args.spec)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--spec is not valid JSON: {err}") from None
        tok = make_tokenizer(spec, args.out_dir, train_fastas=args.train_fasta)
        print(f"{args.out_dir}: {tok.type} tokenizer, vocabulary {tok.vocab_size}")
        return 0

    p.set_defaults(func=run)
