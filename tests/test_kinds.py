"""The registry of kinds (dnalm.kinds): the schemas' enums are the registries, and each
descriptor says what its builder does.

Tokenizer kinds, sample formats and task kinds: the functions named ``test_tokenizer_*``,
``test_sample_format_*`` and ``test_task_kind_*``. (Registry completeness against the builders
is in tests/test_layout.py.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from dnalm.core.errors import ConfigError
from dnalm.kinds.formats import SAMPLE_FORMATS
from dnalm.kinds.tasks import (
    BUILTIN_TASKS,
    SEQUENCE_TASK_KINDS,
    TASK_KINDS,
    infer_kind,
    task_kind_of,
)
from dnalm.kinds.tokenizers import (
    TOKENIZER_KINDS,
    mask_span_for,
    normalise_spec,
    reads_frame,
    token_width,
)

REPO = Path(__file__).resolve().parents[1]
CONFIG_SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
SAMPLES_SCHEMA = yaml.safe_load((REPO / "workflow/schemas/samples.schema.yaml").read_text())


# ----------------------------------------------------------------------- schema enums


def test_tokenizer_type_enum_is_the_registry():
    entry = CONFIG_SCHEMA["properties"]["tokenizers"]["additionalProperties"]
    assert entry["properties"]["type"]["enum"] == list(TOKENIZER_KINDS.names())
    for name, spec in CONFIG_SCHEMA["properties"]["tokenizers"]["default"].items():
        assert normalise_spec(dict(spec))["type"] in TOKENIZER_KINDS, name


def test_sample_format_enum_is_the_registry():
    assert SAMPLES_SCHEMA["properties"]["format"]["enum"] == list(SAMPLE_FORMATS.names())


def test_task_kind_enum_is_the_registry():
    tasks = CONFIG_SCHEMA["properties"]["tasks"]["properties"]
    kind = tasks["sequence_tasks"]["additionalProperties"]["properties"]["kind"]
    assert kind["enum"] == list(SEQUENCE_TASK_KINDS)
    assert kind["default"] == SEQUENCE_TASK_KINDS[0]
    named = {t.name for t in BUILTIN_TASKS if t.named_task} | {"sequence_tasks"}
    assert named <= set(tasks), "a built-in task family is not a key of the tasks section"


# ----------------------------------------------------------------------- tokenizer kinds


def _random_acgt(n: int, seed: int) -> str:
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), n))


FIXED = [
    {"type": "nucleotide"},
    {"type": "nucleotide", "keep_case": True},
    {"type": "kmer", "k": 1},
    {"type": "kmer", "k": 4},
    {"type": "kmer_overlapping", "k": 3},
    {"type": "codon"},
]


@pytest.mark.parametrize("spec", FIXED, ids=lambda s: "-".join(map(str, s.values())))
def test_tokenizer_widths_are_what_the_builder_does(spec):
    """content_tokens is the builder's token count, token_lengths its nt_per_token, and a
    window of whole tokens (token_width) tokenizes without a remainder."""
    from dnalm.tokenization.build import build_tokenizer

    tok = build_tokenizer(spec)
    kind = TOKENIZER_KINDS.get(spec["type"])
    width = kind.nt_per_token(spec)
    for nt in (0, 1, 2, 3, 7, 12, 61):
        ids = tok.encode(_random_acgt(nt, nt))
        assert ids.size == kind.content_tokens(nt, spec), nt
        if not kind.overlapping and ids.size:
            whole = tok.token_lengths(ids)[: nt // width]
            assert (whole == width).all()
    assert token_width(spec) == (1 if kind.overlapping else width)
    assert mask_span_for(spec) == (width if kind.overlapping else 1)
    assert tok.keep_case == kind.keeps_case(spec)


def test_tokenizer_widths_keep_their_values():
    """The numbers the workflow used before the registry (variant windows, mask spans)."""
    assert [token_width(s) for s in FIXED] == [1, 1, 1, 4, 1, 3]
    assert token_width({"type": "bpe"}) == 1
    assert token_width(None) == 1
    assert [mask_span_for(s) for s in FIXED] == [1, 1, 1, 1, 3, 1]
    assert mask_span_for({"type": "kmer_overlapping", "k": 5}) == 5
    assert TOKENIZER_KINDS.get("bpe").content_tokens(100, {"type": "bpe"}) is None
    assert reads_frame("codon")
    assert not reads_frame({"type": "kmer"})
    assert not reads_frame(None)


@pytest.mark.parametrize("name", TOKENIZER_KINDS.names())
def test_tokenizer_token_rc_is_what_the_vocabulary_allows(name):
    """A kind declares a token-level reverse complement exactly when token_rc_map builds one
    for its vocabulary."""
    from dnalm.tokenization.build import build_tokenizer
    from dnalm.tokenization.revcomp import token_rc_map

    spec = {"type": name, **({"k": 3} if "k" in TOKENIZER_KINDS.get(name).spec_keys else {})}
    seqs = [_random_acgt(300, i) for i in range(20)]
    tok = build_tokenizer({**spec, "vocab_size": 64} if name == "bpe" else spec, seqs)
    vocab = tok.tokenizers_object().get_vocab(with_added_tokens=True)
    if TOKENIZER_KINDS.get(name).token_rc:
        rc = token_rc_map(vocab, tok.special_ids, name)
        assert (rc[rc] == np.arange(rc.size)).all()
    else:
        with pytest.raises(ConfigError, match="no token-level reverse complement"):
            token_rc_map(vocab, tok.special_ids, name)


def test_tokenizer_spec_checks_come_from_the_descriptor():
    assert normalise_spec({"type": "kmer"})["k"] == 6
    with pytest.raises(ConfigError, match=r"k must be an integer in \[1, 7\]"):
        normalise_spec({"type": "kmer_overlapping", "k": 8})
    with pytest.raises(ConfigError, match="keep_case must be true or false"):
        normalise_spec({"type": "nucleotide", "keep_case": "yes"})
    with pytest.raises(ConfigError, match="unknown type 'kmers'"):
        normalise_spec({"type": "kmers"})
    assert normalise_spec({"type": "bpe"})["max_train_nt"] is None
    with pytest.raises(ConfigError, match="did you mean 'codon'"):
        TOKENIZER_KINDS.get("codons", "tokenizers.c.type")


# ----------------------------------------------------------------------- sample formats


def test_sample_format_facts_keep_their_values():
    fmts = {f.name: f for f in SAMPLE_FORMATS}
    assert [n for n, f in fmts.items() if f.has_genome] == ["gbff", "fasta_gff", "fasta"]
    assert [n for n, f in fmts.items() if f.has_cds] == ["gbff", "fasta_gff", "cds_fasta"]
    assert [n for n, f in fmts.items() if f.has_features] == ["gbff", "fasta_gff"]
    assert [n for n, f in fmts.items() if f.annotation] == ["fasta_gff"]
    assert {n: f.ncbi_file for n, f in fmts.items() if f.ncbi_file} == {
        "gbff": "gbff",
        "fasta": "fna",
    }


def test_sample_format_ncbi_files_are_published_files():
    from dnalm.genome.ncbi import NCBI_FILES

    assert {f.ncbi_file for f in SAMPLE_FORMATS if f.ncbi_file} <= set(NCBI_FILES)


def test_sample_format_unknown_names_the_sample():
    from dnalm.genome.samples import Sample

    with pytest.raises(ConfigError, match=r"sample x: format: unknown sample format 'gb'"):
        _ = Sample("x", "sp", "a.gbff", "gb").has_cds


# ----------------------------------------------------------------------- task kinds


def test_task_kind_metrics_are_what_the_metric_functions_return():
    from dnalm.core.metrics import classification_metrics, regression_metrics

    y = np.array([0.0, 1.0, 2.0, 0.5])
    got = {
        "classification": classification_metrics(["a", "b", "a", "b"], ["a", "b", "b", "b"]),
        "regression": regression_metrics(y, y[::-1]),
        "per_base_regression": regression_metrics(y[None], y[None], np.ones((1, 4), bool)),
    }
    for kind in TASK_KINDS:
        assert set(kind.metrics) <= set(got[kind.name]), kind.name
        assert kind.selection_metric in got[kind.name], kind.name
        # what finetune.train.selection_metric may name: the kind's own first, all computed
        assert kind.selectable[0] == kind.selection_metric, kind.name
        assert set(kind.selectable) <= set(got[kind.name]), kind.name


def test_task_kind_of_a_task_from_the_config():
    seq = {"mine": {"kind": "regression"}, "generated": {"kind": "regression"}}
    assert task_kind_of("species_fragments", seq) == "classification"
    assert task_kind_of("tf_binding", seq) == "per_base_regression"
    assert task_kind_of("mine", seq) == "regression"
    assert task_kind_of("generated", seq) == "regression"  # a user task of that name
    assert infer_kind(["id", "sequence", "targets"]) == "per_base_regression"
    assert infer_kind(["id", "sequence", "label"]) == "classification"
    assert [k.value_column for k in TASK_KINDS] == ["label", "label", "targets"]
    assert [k.n_outputs(4) for k in TASK_KINDS] == [4, 1, 1]
