"""Tokenizer kinds: what each value of a tokenizer spec's ``type`` is, declared once.

A :class:`TokenizerKind` says what the rest of the workflow needs to know about a scheme
without building it: the keys its spec takes (with defaults and their checks), how many
nucleotides one token covers, whether its tokens overlap, how wide an MLM mask span must be,
whether it keeps soft-masked lower case, whether its vocabulary has a token-level reverse
complement, whether it reads a CDS in frame, and whether its vocabulary is trained. Spec
validation (:func:`normalise_spec`), the corpus builder, the losses, the masking, the
variant-effect windows, the window-fit check of genome corpora and the count baselines read
these fields instead of comparing ``type`` strings.

The builder of each kind is the :class:`~dnalm.tokenization.tokenizers.DnaTokenizer`
subclass of the same ``type`` in :mod:`dnalm.tokenization.kinds` (its ``backend`` builds the
``tokenizers`` object). Adding a kind: a descriptor here and a class there (the config
schema's enum is checked against this registry by tests/test_kinds.py).

Torch-free and ``tokenizers``-free: common.smk reads it at DAG build.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dnalm.core.errors import ConfigError
from dnalm.kinds import Kind, Registry

#: keys every spec may set besides its kind's own, with defaults
COMMON_SPEC_KEYS: dict[str, Any] = {"model_max_length": 1024}
#: ids are stored as uint16; 65535 stays free as an "invalid" marker
MAX_UINT16_VOCAB = 65535
#: special tokens of the BERT layout ([PAD] [UNK] [CLS] [SEP] [MASK])
N_BERT_SPECIALS = 5


@dataclass(frozen=True)
class TokenizerKind(Kind):
    """One tokenizer scheme (see the module docstring).

    ``width``: nucleotides per token, an int, or the spec key that holds it (``"k"``), or None
    when tokens have no fixed width (BPE). ``overlapping``: consecutive tokens are windows at
    stride 1 (a base sits in `width` tokens). ``tail``: what becomes of the last
    (length mod width) bases of a non-overlapping kind: ``"singles"`` (single-base tokens) or
    ``"dropped"`` (no token). ``int_keys``: (key, lo, hi) integer checks, in order (a key
    whose value is None is skipped when its default is None); ``bool_keys``: keys that must be
    true or false."""

    spec_keys: Mapping[str, Any] = field(default_factory=dict)
    int_keys: tuple[tuple[str, int, int], ...] = ()
    bool_keys: tuple[str, ...] = ()
    width: int | str | None = 1
    overlapping: bool = False
    tail: str = "singles"
    #: the spec key that keeps soft-masked lower case as its own tokens (None: upper-cases)
    case_key: str | None = None
    #: every token has its reverse complement in the vocabulary (token-level RC losses)
    token_rc: bool = True
    #: why not, for the error when token_rc is False
    no_rc_reason: str = ""
    #: the sequence is read in frame from its first base (a CDS): no reverse-complement
    #: augmentation, a trailing partial codon is counted as trimmed, codon-usage baselines
    reads_frame: bool = False
    #: the vocabulary is trained on the training split (BPE) rather than fixed by the spec
    trained: bool = False

    def nt_per_token(self, spec: Mapping[str, Any] | None) -> int | None:
        """Nucleotides one token covers under `spec` (None: not fixed)."""
        if isinstance(self.width, str):
            return int((spec or {}).get(self.width, self.spec_keys[self.width]))
        return self.width

    def mask_span(self, spec: Mapping[str, Any] | None) -> int:
        """MLM masking span: the token width for overlapping tokens (a base sits in that many
        consecutive tokens, so masking fewer would let the model read it from a neighbour),
        else 1 (each token is already a whole unit)."""
        return int(self.nt_per_token(spec) or 1) if self.overlapping else 1

    def token_width(self, spec: Mapping[str, Any] | None) -> int:
        """Nucleotides per token of a fixed-width non-overlapping scheme, else 1: the unit
        that windows are aligned to so that they start on a token boundary."""
        if self.overlapping:
            return 1
        return self.nt_per_token(spec) or 1

    def content_tokens(self, nt: int, spec: Mapping[str, Any] | None) -> int | None:
        """The most tokens (without BOS/EOS) a sequence of `nt` bases can take; None when
        the width is not fixed (BPE: its length depends on its merges)."""
        w = self.nt_per_token(spec)
        if w is None:
            return None
        if self.overlapping:
            return max(nt - w + 1, 0)
        return nt // w + (nt % w if self.tail == "singles" else 0)

    def keeps_case(self, spec: Mapping[str, Any] | None) -> bool:
        """Whether `spec` keeps soft-masked lower case as tokens of its own."""
        return bool(self.case_key and (spec or {}).get(self.case_key, False))


TOKENIZER_KINDS: Registry[TokenizerKind] = Registry("tokenizer type")

TOKENIZER_KINDS.register(
    TokenizerKind(
        name="nucleotide",
        summary="one token per base (A C G T N; with keep_case also a c g t n)",
        spec_keys={"keep_case": False},
        bool_keys=("keep_case",),
        case_key="keep_case",
    )
)
TOKENIZER_KINDS.register(
    TokenizerKind(
        name="kmer",
        summary="non-overlapping k-mers with single-base fallback (Nucleotide Transformer)",
        spec_keys={"k": 6},
        int_keys=(("k", 1, 7),),  # 4^8 k-mers plus specials would not fit uint16 ids
        width="k",
    )
)
TOKENIZER_KINDS.register(
    TokenizerKind(
        name="kmer_overlapping",
        summary="all k-length windows at stride 1 (DNABERT-1)",
        spec_keys={"k": 6},
        int_keys=(("k", 1, 7),),
        width="k",
        overlapping=True,
    )
)
TOKENIZER_KINDS.register(
    TokenizerKind(
        name="codon",
        summary="in-frame codons of a CDS; a trailing partial codon is dropped",
        width=3,
        tail="dropped",
        token_rc=False,
        no_rc_reason="a codon is read in its own CDS frame and strand",
        reads_frame=True,
    )
)
TOKENIZER_KINDS.register(
    TokenizerKind(
        name="bpe",
        summary="byte-pair encoding trained on the training split (DNABERT-2)",
        spec_keys={"vocab_size": 4096, "min_frequency": 2, "max_train_nt": None},
        int_keys=(
            ("vocab_size", N_BERT_SPECIALS + 5 + 1, MAX_UINT16_VOCAB),
            ("min_frequency", 1, 10**9),
            ("max_train_nt", 1, 10**15),
        ),
        width=None,
        token_rc=False,
        no_rc_reason="the reverse complement of a BPE token need not be a token",
        trained=True,
    )
)

#: the tokenizer types, in declaration order
TOKENIZER_TYPES: tuple[str, ...] = TOKENIZER_KINDS.names()


def tokenizer_kind(spec_or_type: Mapping[str, Any] | str | None) -> TokenizerKind | None:
    """The descriptor of a spec (or a type name); None for no spec, no type or an unknown
    type (e.g. a Hugging Face tokenizer of a downloaded model)."""
    name = spec_or_type.get("type") if isinstance(spec_or_type, Mapping) else spec_or_type
    return TOKENIZER_KINDS.get(name) if isinstance(name, str) and name in TOKENIZER_KINDS else None


def token_width(spec: Mapping[str, Any] | None) -> int:
    """Nucleotides per token of a fixed-width non-overlapping tokenizer spec (codon 3, k-mer
    k), else 1 (see :meth:`TokenizerKind.token_width`)."""
    kind = tokenizer_kind(spec)
    return kind.token_width(spec) if kind else 1


def mask_span_for(spec: Mapping[str, Any] | None) -> int:
    """MLM masking span of a tokenizer spec (see :meth:`TokenizerKind.mask_span`)."""
    kind = tokenizer_kind(spec)
    return kind.mask_span(spec) if kind else 1


def reads_frame(spec_or_type: Mapping[str, Any] | str | None) -> bool:
    """Whether the tokenizer reads a CDS in frame (codon)."""
    kind = tokenizer_kind(spec_or_type)
    return bool(kind and kind.reads_frame)


def normalise_spec(spec: dict) -> dict:
    """Validate a tokenizer spec and fill in its defaults. Raises ConfigError naming the
    offending key."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ConfigError(f"tokenizer spec {spec!r}: a mapping with a 'type' key is required")
    name = spec["type"]
    kind = tokenizer_kind(name)
    if kind is None:
        raise ConfigError(
            f"tokenizer spec {spec!r}: unknown type {name!r}; choose one of {TOKENIZER_TYPES}"
        )
    allowed = {"type", *COMMON_SPEC_KEYS, *kind.spec_keys}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigError(
            f"tokenizer spec {spec!r}: unknown key(s) {unknown} for type {name!r}; "
            f"allowed: {sorted(allowed)}"
        )
    out = {"type": name, **kind.spec_keys, **spec}
    for key, default in COMMON_SPEC_KEYS.items():
        out.setdefault(key, default)

    def _int(key: str, lo: int, hi: int) -> None:
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ConfigError(f"tokenizer spec {spec!r}: {key} must be an integer in [{lo}, {hi}]")

    _int("model_max_length", 1, 10**9)
    for key, lo, hi in kind.int_keys:
        if out[key] is None and kind.spec_keys.get(key, 0) is None:
            continue
        _int(key, lo, hi)
    for key in kind.bool_keys:
        if not isinstance(out[key], bool):
            raise ConfigError(f"tokenizer spec {spec!r}: {key} must be true or false")
    return out
