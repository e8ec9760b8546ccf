"""Tokenizers: the NumPy path equals the tokenizer.json path (hypothesis), round trips,
the Nucleotide-Transformer k-mer rule, normalisation and errors, saved folders that
AutoTokenizer loads offline, BPE trained on real CDS."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnalm.core.alphabet import reverse_complement
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import read_fasta
from dnalm.tokenization.build import build_tokenizer, load_tokenizer, make_tokenizer, train_bpe
from dnalm.tokenization.tokenizers import DnaTokenizer

FIXED_SPECS = [
    {"type": "nucleotide"},
    {"type": "nucleotide", "keep_case": True},
    {"type": "kmer", "k": 6},
    {"type": "kmer", "k": 3},
    {"type": "kmer", "k": 1},
    {"type": "kmer_overlapping", "k": 6},
    {"type": "kmer_overlapping", "k": 2},
    {"type": "codon"},
]
IDS = ["-".join(f"{k}={v}" for k, v in s.items() if k != "type") or s["type"] for s in FIXED_SPECS]
IDS = [f"{s['type']}:{i}" for s, i in zip(FIXED_SPECS, IDS, strict=True)]

_CACHE: dict[str, DnaTokenizer] = {}


def tok_for(spec: dict) -> DnaTokenizer:
    key = json.dumps(spec, sort_keys=True)
    if key not in _CACHE:
        _CACHE[key] = build_tokenizer(spec)
    return _CACHE[key]


# Any IUPAC letter in either case (normalisation is exercised), biased towards ACGT.
iupac = st.text(alphabet=st.sampled_from(list("ACGTACGTACGTNacgtnUuRYSWKMBDHVrysw")), max_size=80)
valid_upper = st.text(alphabet=st.sampled_from(list("ACGTACGTN")), max_size=80)
acgt = st.text(alphabet=st.sampled_from(list("ACGT")), max_size=80)
HYP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def hf_ids(tok: DnaTokenizer, seqs: list[str], add_special_tokens: bool = False):
    """Ids from the PreTrainedTokenizerFast built on tokenizer.json."""
    if not seqs:  # transformers cannot tokenize an empty batch
        return []
    out = tok.hf()([tok.hf_text(s) for s in seqs], add_special_tokens=add_special_tokens)
    return out["input_ids"]


def nt_kmer_reference(seq: str, k: int) -> list[str]:
    """The Nucleotide-Transformer rule written as a plain loop: a k-mer when the next k
    bases are all ACGT, else one base."""
    out, i = [], 0
    while i < len(seq):
        w = seq[i : i + k]
        if len(w) == k and set(w) <= set("ACGT"):
            out.append(w)
            i += k
        else:
            out.append(seq[i])
            i += 1
    return out


# ---- NumPy path == tokenizer.json path ---------------------------------------------------


@pytest.mark.parametrize("spec", FIXED_SPECS, ids=IDS)
@HYP
@given(seqs=st.lists(iupac, max_size=5))
def test_numpy_ids_equal_tokenizer_json_ids(spec, seqs):
    tok = tok_for(spec)
    fast = tok.encode_batch(seqs)
    ref = hf_ids(tok, seqs)
    assert len(fast) == len(seqs)
    for a, b in zip(fast, ref, strict=True):
        assert a.dtype == np.uint16
        assert a.tolist() == list(b)


@pytest.mark.parametrize("spec", FIXED_SPECS, ids=IDS)
@HYP
@given(seq=iupac)
def test_special_tokens_template_matches(spec, seq):
    tok = tok_for(spec)
    assert tok.encode(seq, add_special_tokens=True).tolist() == hf_ids(tok, [seq], True)[0]


@pytest.mark.parametrize("k", [1, 2, 5, 6])
@HYP
@given(seq=valid_upper)
def test_kmer_follows_the_nucleotide_transformer_rule(k, seq):
    tok = tok_for({"type": "kmer", "k": k})
    tokens = [tok.tokenizers_object().id_to_token(i) for i in tok.encode(seq).tolist()]
    assert tokens == nt_kmer_reference(seq, k)


# ---- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec", [{"type": "nucleotide"}, {"type": "kmer", "k": 6}, {"type": "kmer", "k": 4}]
)
@HYP
@given(seq=valid_upper)
def test_round_trip_acgtn(spec, seq):
    tok = tok_for(spec)
    assert tok.decode(tok.encode(seq)) == seq
    # the HF decoder (Fuse) gives the sequence too
    assert tok.hf().decode(tok.encode(seq).tolist(), skip_special_tokens=True) == seq


@HYP
@given(seq=st.text(alphabet=st.sampled_from(list("ACGTNacgtn")), max_size=80))
def test_round_trip_keep_case(seq):
    tok = tok_for({"type": "nucleotide", "keep_case": True})
    assert tok.decode(tok.encode(seq)) == seq


@pytest.mark.parametrize("k", [2, 6])
@HYP
@given(seq=acgt)
def test_round_trip_overlapping(k, seq):
    tok = tok_for({"type": "kmer_overlapping", "k": k})
    ids = tok.encode(seq)
    assert ids.size == max(len(seq) - k + 1, 0)
    assert tok.decode(ids) == (seq if len(seq) >= k else "")


@HYP
@given(seq=acgt)
def test_round_trip_codon(seq):
    tok = tok_for({"type": "codon"})
    whole = seq[: len(seq) - len(seq) % 3]
    assert tok.decode(tok.encode(seq)) == whole  # trailing partial codon dropped


@pytest.mark.parametrize("spec", FIXED_SPECS, ids=IDS)
@HYP
@given(seqs=st.lists(iupac, max_size=4))
def test_encode_concat_equals_per_sequence(spec, seqs):
    tok = tok_for(spec)
    ids, off = tok.encode_concat(seqs)
    assert off.tolist()[0] == 0
    assert off[-1] == ids.size
    for i, s in enumerate(seqs):
        assert ids[off[i] : off[i + 1]].tolist() == tok.encode(s).tolist()


# ---- the documented examples -------------------------------------------------------------


def _tokens(tok: DnaTokenizer, ids) -> list[str]:
    return [tok.tokenizers_object().id_to_token(int(i)) for i in ids]


def test_nucleotide_transformer_examples():
    tok = tok_for({"type": "kmer", "k": 6})
    ids = tok.encode("ATGGTAGCTACATCATCT", add_special_tokens=True)
    assert _tokens(tok, ids) == ["[CLS]", "ATGGTA", "GCTACA", "TCATCT", "[SEP]"]
    assert ids[0] == tok.cls_id
    assert _tokens(tok, tok.encode("ATGGTAGCNTACATCATCTGA")) == [
        "ATGGTA", "G", "C", "N", "TACATC", "ATCTGA"
    ]  # fmt: skip
    assert _tokens(tok, tok.encode("ATGGTAGCTACATCATCTGAC")) == [
        "ATGGTA", "GCTACA", "TCATCT", "G", "A", "C"
    ]  # fmt: skip
    assert tok.vocab_size == 5 + 5 + 4**6


def test_codon_ambiguity_and_partial_codon():
    tok = tok_for({"type": "codon"})
    ids = tok.encode("ATGNCCTAAGT")  # ATG NCC TAA + 'GT' dropped
    assert _tokens(tok, ids) == ["ATG", "<UNK>", "TAA"]
    assert tok.decode(ids) == "ATGNNNTAA"
    assert tok.base_to_token_index("ATGNCCTAAGT").tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [
        -1,
        -1,
    ]
    assert tok.cls_id is None
    assert tok.sep_id != tok.eos_id
    assert _tokens(tok, tok.encode("ATG", add_special_tokens=True)) == [
        "<BOS_CDS>", "ATG", "<EOS_CDS>"
    ]  # fmt: skip
    assert tok.vocab_size == 6 + 64


def test_overlapping_kmers_with_n_and_short_input():
    tok = tok_for({"type": "kmer_overlapping", "k": 3})
    assert _tokens(tok, tok.encode("ACGNTT")) == ["ACG", "[UNK]", "[UNK]", "[UNK]"]
    assert tok.decode(tok.encode("ACGNTT")) == "ACGNNN"
    assert tok.encode("AC").size == 0
    assert tok.hf_text("ACGT") == "ACG CGT"


def test_keep_case_tokens_are_distinct():
    soft = tok_for({"type": "nucleotide", "keep_case": True})
    hard = tok_for({"type": "nucleotide"})
    assert soft.vocab_size == hard.vocab_size + 5
    assert soft.encode("ACgt").tolist() != soft.encode("ACGT").tolist()
    assert _tokens(soft, soft.encode("ACgtnu")) == ["A", "C", "g", "t", "n", "t"]
    assert _tokens(soft, soft.encode("ry")) == ["n", "n"]  # lower-case ambiguity stays soft
    assert hard.encode("acgtn").tolist() == hard.encode("ACGTN").tolist()


# ---- normalisation and errors ------------------------------------------------------------


@pytest.mark.parametrize("spec", FIXED_SPECS, ids=IDS)
def test_normalisation_u_iupac_lower_case(spec):
    tok = tok_for(spec)
    keep = spec.get("keep_case", False)
    assert tok.encode("ACGUACGU").tolist() == tok.encode("ACGTACGT").tolist()
    assert tok.encode("RYSWKMBDHVRY").tolist() == tok.encode("N" * 12).tolist()
    if not keep:
        assert tok.encode("acgtacgtac").tolist() == tok.encode("ACGTACGTAC").tolist()
    assert tok.encode("").size == 0
    assert tok.encode("").dtype == np.uint16
    assert tok.decode([]) == ""


@pytest.mark.parametrize(
    "spec", [*FIXED_SPECS, {"type": "bpe", "vocab_size": 64}], ids=[*IDS, "bpe"]
)
@pytest.mark.parametrize(
    ("bad", "char", "pos"), [("ACGT-ACG", "'-'", 5), ("ACX", "'X'", 3), ("ACGé", "'é'", 4)]
)
def test_non_iupac_character_is_an_error_naming_sequence_and_position(spec, bad, char, pos):
    tok = build_tokenizer(spec, ["ACGTACGTTTGACA" * 20]) if spec["type"] == "bpe" else tok_for(spec)
    with pytest.raises(InputFormatError, match=rf"'gene_7'.*{char}.*position {pos}\b"):
        tok.encode_batch(["ACGT", bad], names=["gene_1", "gene_7"])


def test_nul_inside_a_sequence_is_rejected():
    tok = tok_for({"type": "kmer", "k": 3})
    with pytest.raises(InputFormatError, match=r"'b'.*position 2"):
        tok.encode_batch(["ACGT", "A\x00C"], names=["a", "b"])


def test_spec_validation():
    with pytest.raises(ConfigError, match="unknown type"):
        build_tokenizer({"type": "word"})
    with pytest.raises(ConfigError, match=r"unknown key.*'kk'"):
        build_tokenizer({"type": "kmer", "kk": 3})
    with pytest.raises(ConfigError, match=r"k must be an integer in \[1, 7\]"):
        build_tokenizer({"type": "kmer", "k": 8})
    with pytest.raises(ConfigError, match="keep_case"):
        build_tokenizer({"type": "codon", "keep_case": True})
    with pytest.raises(ConfigError, match="must be trained"):
        build_tokenizer({"type": "bpe"})


def test_reverse_complement():
    assert reverse_complement("ACGTNRYu") == "aRYNACGT"
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("acgU") == "Acgt"
    assert reverse_complement("RYKM") == "KMRY"


# ---- base -> token mapping ---------------------------------------------------------------


@pytest.mark.parametrize("spec", FIXED_SPECS, ids=IDS)
@HYP
@given(seq=valid_upper)
def test_base_to_token_index_covers_each_base(spec, seq):
    tok = tok_for(spec)
    idx = tok.base_to_token_index(seq)
    ids = tok.encode(seq)
    assert idx.shape == (len(seq),)
    if tok.type == "kmer_overlapping":
        k = tok.k
        for i, t in enumerate(idx.tolist()):
            assert (t == -1) == (len(seq) < k)
            if t >= 0:
                assert t <= i < t + k  # the chosen window covers the base
        return
    covered = idx >= 0
    assert (np.diff(idx[covered]) >= 0).all()  # monotone
    for t in range(ids.size):  # bases of token t spell token t
        text = tok.decode(ids[t : t + 1])
        assert "".join(np.array(list(seq))[idx == t]) == text or set(text) == {"N"}


# ---- persistence: AutoTokenizer offline ----------------------------------------------------


@pytest.mark.parametrize("spec", FIXED_SPECS, ids=IDS)
def test_saved_folder_loads_offline_with_autotokenizer(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoTokenizer

    tok = tok_for(spec)
    folder = tok.save(tmp_path / "tok")
    names = {p.name for p in folder.iterdir()}
    assert {
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "dnalm_tokenizer.json",
    } <= names
    auto = AutoTokenizer.from_pretrained(str(folder))
    for role in ("pad", "unk", "cls", "sep", "mask", "bos", "eos"):
        assert getattr(auto, f"{role}_token_id") == getattr(tok, f"{role}_id"), role
    seqs = ["ATGGTAGCTACATCATCTGAC", "acgunnATG", ""]
    got = auto([tok.hf_text(s) for s in seqs], add_special_tokens=True)["input_ids"]
    want = [x.tolist() for x in tok.encode_batch(seqs, add_special_tokens=True)]
    assert got == want
    assert auto.model_max_length == tok.spec["model_max_length"]
    restored = load_tokenizer(folder)
    assert restored.hash == tok.hash
    assert restored.spec == tok.spec
    assert restored.encode(seqs[0]).tolist() == tok.encode(seqs[0]).tolist()
    meta = json.loads((folder / "dnalm_tokenizer.json").read_text())
    assert meta["hash"] == tok.hash
    assert meta["spec"]["type"] == spec["type"]
    # re-saving through transformers keeps the hash (it ignores formatting and runtime keys)
    auto.save_pretrained(str(tmp_path / "resaved"))
    for extra in ("dnalm_tokenizer.json",):
        (tmp_path / "resaved" / extra).write_text((folder / extra).read_text())
    assert load_tokenizer(tmp_path / "resaved").hash == tok.hash


def test_hash_is_stable_and_distinguishes_specs():
    a = build_tokenizer({"type": "kmer", "k": 6})
    b = build_tokenizer({"type": "kmer", "k": 6})
    c = build_tokenizer({"type": "kmer", "k": 5})
    assert a.hash == b.hash != c.hash
    assert len(a.hash) == 64


def test_tampered_tokenizer_json_is_refused(tmp_path):
    folder = tok_for({"type": "codon"}).save(tmp_path / "codon")
    data = json.loads((folder / "tokenizer.json").read_text())
    data["model"]["vocab"]["AAA"], data["model"]["vocab"]["AAC"] = (
        data["model"]["vocab"]["AAC"],
        data["model"]["vocab"]["AAA"],
    )
    (folder / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(InputFormatError, match="hash"):
        load_tokenizer(folder)
    with pytest.raises(InputFormatError, match="not a dnalm tokenizer folder"):
        load_tokenizer(tmp_path)


def test_save_replaces_atomically(tmp_path):
    dest = tmp_path / "tok"
    tok_for({"type": "kmer", "k": 3}).save(dest)
    tok_for({"type": "nucleotide"}).save(dest)
    assert load_tokenizer(dest).type == "nucleotide"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]  # no temp leftovers


# ---- BPE on real CDS ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ecoli_cds(shared_data):
    path = shared_data / "cds_fasta" / "ecoli_highly_expressed_genes.fasta"
    return path, [s for _h, s, _l in read_fasta(path)]


def test_bpe_trains_on_real_cds_and_round_trips(ecoli_cds, tmp_path, monkeypatch):
    path, seqs = ecoli_cds
    tok = train_bpe([path], vocab_size=300, out_dir=tmp_path / "bpe")
    assert tok.type == "bpe"
    assert not tok.has_numpy_path
    assert 10 < tok.vocab_size <= 300
    ids = tok.encode_batch(seqs)
    assert all(tok.decode(i) == s.upper() for i, s in zip(ids, seqs, strict=True))
    n_tok = sum(i.size for i in ids)
    assert n_tok < sum(map(len, seqs)) / 2  # merges compress the sequence
    # per-base mapping from the offsets is consistent with the token strings
    s = seqs[0]
    idx = tok.base_to_token_index(s)
    for t in range(ids[0].size):
        assert "".join(np.array(list(s))[idx == t]) == tok.decode(ids[0][t : t + 1])
    # the saved folder: reproducible and loadable offline
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    auto = AutoTokenizer.from_pretrained(str(tmp_path / "bpe"))
    assert auto(s, add_special_tokens=False)["input_ids"] == ids[0].tolist()
    assert auto.mask_token_id == tok.mask_id == 4
    again = load_tokenizer(tmp_path / "bpe")
    assert again.hash == tok.hash
    assert make_tokenizer({"type": "bpe", "vocab_size": 300}, train_fastas=[path]).hash == tok.hash


def test_bpe_vocab_size_and_lower_case_input(ecoli_cds):
    _path, seqs = ecoli_cds
    small = build_tokenizer({"type": "bpe", "vocab_size": 64}, seqs)
    big = build_tokenizer({"type": "bpe", "vocab_size": 512}, seqs)
    assert small.vocab_size == 64
    assert big.vocab_size == 512
    s = seqs[1]
    assert big.encode(s.lower()).tolist() == big.encode(s).tolist()
    assert big.encode(s).size < small.encode(s).size
    assert big.encode_hf([s])[0].tolist() == big.encode(s).tolist()
