"""Building, training (BPE) and loading tokenizer folders, and the ``dnalm tokenizer``
subcommand."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from dnalm.core.artifacts import DNALM_TOKENIZER_JSON, TOKENIZER_JSON
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import read_fasta, refuse_overwrite
from dnalm.kinds.tokenizers import TOKENIZER_KINDS, normalise_spec
from dnalm.tokenization.kinds import CLASSES
from dnalm.tokenization.tokenizers import (
    DnaTokenizer,
    tokenizer_json_hash,
)


def tokenizer_class(spec: dict) -> type[DnaTokenizer]:
    """The builder class of a normalised spec's kind."""
    return CLASSES[spec["type"]]


def build_tokenizer(spec: dict, train_sequences: Iterable[str] | None = None) -> DnaTokenizer:
    """Build the tokenizer described by `spec` (see the module docstring). A trained kind
    (BPE) needs `train_sequences` (the training split); the fixed vocabularies ignore them."""
    spec = normalise_spec(spec)
    cls = tokenizer_class(spec)
    return cls(spec, cls.backend(spec, train_sequences))


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
    name = normalise_spec(spec)["type"]
    if TOKENIZER_KINDS.get(name).trained:
        if train_fastas is None:
            raise ConfigError(f"a {name} tokenizer needs training FASTA files")
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
    meta_path = folder / DNALM_TOKENIZER_JSON
    if not meta_path.is_file():
        raise InputFormatError(
            f"{folder}: no {DNALM_TOKENIZER_JSON}; this is not a dnalm tokenizer folder "
            "(build it with "
            "the tokenizer rule or dnalm.tokenization.tokenizers.make_tokenizer)"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    text = (folder / TOKENIZER_JSON).read_text(encoding="utf-8")
    digest = tokenizer_json_hash(text)
    if digest != meta.get("hash"):
        raise InputFormatError(
            f"{folder}/tokenizer.json: content hash {digest[:12]} differs from the one in "
            f"{DNALM_TOKENIZER_JSON} ({str(meta.get('hash'))[:12]}); "
            "the file was edited or replaced; "
            "rebuild the tokenizer folder"
        )
    spec = normalise_spec(meta["spec"])
    tok = Tokenizer.from_str(text)
    cls = tokenizer_class(spec)
    if not TOKENIZER_KINDS.get(spec["type"]).trained:
        expected = cls.backend(spec).get_vocab(with_added_tokens=True)
        if tok.get_vocab(with_added_tokens=True) != expected:
            raise InputFormatError(
                f"{folder}/tokenizer.json: vocabulary differs from the {spec['type']} spec "
                f"{spec}; rebuild the tokenizer folder"
            )
    return cls(spec, tok)


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
        refuse_overwrite(
            {"--train-fasta": args.train_fasta}, {"OUT_DIR": args.out_dir}, ["OUT_DIR"]
        )
        try:
            spec = json.loads(args.spec)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--spec is not valid JSON: {err}") from None
        tok = make_tokenizer(spec, args.out_dir, train_fastas=args.train_fasta)
        print(f"{args.out_dir}: {tok.type} tokenizer, vocabulary {tok.vocab_size}")
        return 0

    p.set_defaults(func=run)
