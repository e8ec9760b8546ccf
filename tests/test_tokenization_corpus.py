"""Pretraining corpus: packed windows with per-CDS positions, padded windows, chunking of
long CDS, min-length drops, reverse-complement augmentation, meta.json, the all-padding
integrity check, atomic output and bad input."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from dnalm.core.alphabet import reverse_complement
from dnalm.core.errors import ConfigError, DnalmError, InputFormatError
from dnalm.core.io import atomic_write, read_fasta, write_fasta
from dnalm.tokenization.build import build_tokenizer, load_tokenizer
from dnalm.tokenization.corpus import build_corpus
from dnalm.tokenization.shards import ShardWriter
from dnalm.training import lm_data


def _random_cds(rng: np.random.Generator, n: int, lo: int, hi: int) -> list[str]:
    return ["".join(rng.choice(list("ACGT"), size=int(rng.integers(lo, hi)))) for _ in range(n)]


def _fasta(path, seqs, prefix="cds"):
    with atomic_write(path) as fh:
        write_fasta(fh, [(f"{prefix}{i} some description", s) for i, s in enumerate(seqs)])
    return path


def load_split(corpus_dir, split):
    tokens, positions = (np.asarray(a) for a in lm_data.load_split(corpus_dir, split))
    return tokens, positions, json.loads((corpus_dir / "meta.json").read_text())


def _segments(tokens: np.ndarray, positions: np.ndarray, pad: int) -> list[np.ndarray]:
    """Cut every window at position 0 (non-pad) into its segments."""
    out = []
    for row_t, row_p in zip(tokens, positions, strict=True):
        real = row_t != pad
        starts = np.flatnonzero(real & (row_p == 0))
        ends = [*starts[1:].tolist(), int(real.sum())]
        for a, b in zip(starts.tolist(), ends, strict=True):
            assert row_p[a:b].tolist() == list(range(b - a))  # positions restart per segment
            out.append(row_t[a:b])
    return out


@pytest.fixture
def short_cds(tmp_path):
    rng = np.random.default_rng(1)
    train = _random_cds(rng, 40, 30, 200)
    valid = _random_cds(rng, 10, 30, 200)
    return (
        {
            "train": [_fasta(tmp_path / "train.fa.gz", train)],
            "validation": [_fasta(tmp_path / "validation.fa", valid, "v")],
        },
        train,
        valid,
    )


@pytest.mark.parametrize(
    "spec", [{"type": "nucleotide"}, {"type": "kmer", "k": 3}, {"type": "codon"}]
)
def test_packed_windows_hold_whole_cds_with_restarting_positions(spec, short_cds, tmp_path):
    splits, train, _valid = short_cds
    tok = build_tokenizer(spec)
    meta = build_corpus(tok, splits, tmp_path / "corpus", block_size=256, packing="packed")
    tokens, positions, _ = load_split(tmp_path / "corpus", "train")
    assert tokens.dtype == np.uint16
    assert positions.dtype == np.uint16
    assert tokens.shape == positions.shape == (meta["train"]["n_windows"], 256)
    assert (positions[tokens == tok.pad_id] == 0).all()
    segs = _segments(tokens, positions, tok.pad_id)
    # every CDS is one segment BOS ... EOS and they are all there, once
    assert all(s[0] == tok.bos_id and s[-1] == tok.eos_id for s in segs)
    decoded = Counter(tok.decode(s) for s in segs)
    expected = Counter(tok.decode(tok.encode(s)) for s in train)
    assert decoded == expected
    # packing: several CDS share a window, so fewer windows than CDS
    assert meta["train"]["n_windows"] < len(train)
    n_tok = sum(tok.encode(s).size + 2 for s in train)
    assert meta["train"]["n_tokens"] == n_tok == int((tokens != tok.pad_id).sum())


def test_padded_windows_hold_one_cds_each(short_cds, tmp_path):
    splits, train, _ = short_cds
    tok = build_tokenizer({"type": "kmer", "k": 6})
    meta = build_corpus(tok, splits, tmp_path / "c", block_size=64, packing="padded")
    tokens, positions, _ = load_split(tmp_path / "c", "train")
    assert meta["packing"] == "padded"
    assert tokens.shape[0] == len(train) == meta["train"]["n_windows"]
    for row_t, row_p in zip(tokens, positions, strict=True):
        n = int((row_t != tok.pad_id).sum())
        assert (row_t[:n] != tok.pad_id).all()
        assert (row_t[n:] == tok.pad_id).all()
        assert row_p[:n].tolist() == list(range(n))
        assert not row_p[n:].any()
        assert row_t[0] == tok.bos_id
        assert row_t[n - 1] == tok.eos_id
    pad_frac = meta["train"]["pad_fraction"]
    assert pad_frac == pytest.approx(1 - int((tokens != tok.pad_id).sum()) / tokens.size)


@pytest.mark.parametrize("packing", ["packed", "padded"])
def test_long_cds_is_split_into_chunks_with_bos_first_eos_last(packing, tmp_path):
    rng = np.random.default_rng(7)
    long_seq = _random_cds(rng, 1, 250, 251)[0]  # 250 nt -> 252 tokens with BOS/EOS
    others = _random_cds(rng, 5, 20, 40)
    tok = build_tokenizer({"type": "nucleotide"})
    path = _fasta(tmp_path / "t.fa", [long_seq, *others])
    meta = build_corpus(tok, {"train": [path]}, tmp_path / "c", block_size=100, packing=packing)
    tokens, positions, _ = load_split(tmp_path / "c", "train")
    segs = _segments(tokens, positions, tok.pad_id)
    assert meta["train"]["n_chunked_sequences"] == 1
    assert meta["train"]["n_segments"] == len(segs) == 3 + 5
    chunks = [s for s in segs if s.size == 100 or (s[0] != tok.bos_id or s[-1] != tok.eos_id)]
    first = [c for c in chunks if c[0] == tok.bos_id]
    middle = [c for c in chunks if c[0] != tok.bos_id and c[-1] != tok.eos_id]
    last = [c for c in chunks if c[0] != tok.bos_id and c[-1] == tok.eos_id]
    assert len(first) == len(middle) == len(last) == 1
    assert first[0][-1] != tok.eos_id
    assert [c.size for c in (first[0], middle[0], last[0])] == [100, 100, 52]
    assert tok.decode(np.concatenate([first[0], middle[0], last[0]])) == long_seq


def test_min_length_drops_are_counted(tmp_path):
    seqs = ["ATG" * 5, "ATG" * 20, "", "AT", "ATGC" * 30]
    path = _fasta(tmp_path / "t.fa", seqs)
    tok = build_tokenizer({"type": "kmer_overlapping", "k": 6})
    meta = build_corpus(tok, {"train": [path]}, tmp_path / "c", block_size=128, min_length=20)
    s = meta["train"]
    assert (s["n_input_sequences"], s["n_sequences"], s["n_dropped_short"]) == (5, 2, 3)
    assert s["nucleotides"] == 60 + 120
    assert s["n_content_tokens"] == (60 - 5) + (120 - 5)
    assert s["nt_per_token"] == pytest.approx(180 / 170)
    # the effective minimum can only be raised by the tokenizer (k for overlapping k-mers)
    meta = build_corpus(tok, {"train": [path]}, tmp_path / "c", block_size=128, min_length=0)
    assert meta["min_length_effective"] == 6
    assert meta["train"]["n_dropped_short"] == 2  # "" and "AT"


def test_rc_augmentation_train_only(short_cds, tmp_path):
    splits, train, valid = short_cds
    tok = build_tokenizer({"type": "kmer", "k": 6})
    meta = build_corpus(tok, splits, tmp_path / "c", block_size=128, rc_augment=True)
    tr, va = meta["train"], meta["validation"]
    assert tr["n_rc_added"] == tr["n_sequences"] == len(train)
    assert va["n_rc_added"] == 0
    assert tr["nucleotides"] == 2 * sum(map(len, train))
    tokens, positions, _ = load_split(tmp_path / "c", "train")
    decoded = Counter(tok.decode(s) for s in _segments(tokens, positions, tok.pad_id))
    assert decoded == Counter(train + [reverse_complement(s) for s in train])
    tokens, positions, _ = load_split(tmp_path / "c", "validation")
    assert Counter(tok.decode(s) for s in _segments(tokens, positions, tok.pad_id)) == Counter(
        valid
    )


def test_rc_augmentation_refused_for_codon(short_cds, tmp_path):
    splits, _, _ = short_cds
    with pytest.raises(ConfigError, match=r"rc_augment.*codon"):
        build_corpus(
            build_tokenizer({"type": "codon"}), splits, tmp_path / "c", 64, rc_augment=True
        )
    assert not (tmp_path / "c").exists()


def test_meta_json_and_tokenizer_copy(short_cds, tmp_path):
    splits, train, valid = short_cds
    tok = build_tokenizer({"type": "codon"})
    tok_dir = tok.save(tmp_path / "codon_tok")
    meta = build_corpus(tok_dir, splits, tmp_path / "c", block_size=64, seed=3)
    on_disk = json.loads((tmp_path / "c" / "meta.json").read_text())
    assert on_disk == json.loads(json.dumps(meta))
    assert meta["tokenizer"] == "codon_tok"
    assert meta["tokenizer_hash"] == tok.hash == load_tokenizer(tmp_path / "c" / "tokenizer").hash
    assert meta["vocab_size"] == tok.vocab_size
    assert meta["block_size"] == 64
    assert meta["packing"] == "packed"
    assert meta["seed"] == 3
    for role in ("pad", "unk", "bos", "eos", "sep", "mask"):
        assert meta[f"{role}_id"] == getattr(tok, f"{role}_id")
    assert meta["cls_id"] is None
    assert meta["splits"] == ["train", "validation"]
    for split, seqs in (("train", train), ("validation", valid)):
        s = meta[split]
        for key in ("n_windows", "n_tokens", "n_sequences", "n_dropped_short", "nt_per_token"):
            assert key in s
        trimmed = sum(len(x) - len(x) % 3 for x in seqs)
        assert s["nucleotides"] == trimmed
        assert s["n_trimmed_partial_codon"] == sum(len(x) % 3 != 0 for x in seqs)
        assert s["nt_per_token"] == pytest.approx(3.0)
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert names == ["meta.json", "tokenizer", "train", "validation"]
    for split in ("train", "validation"):
        shards = meta[split]["shards"]
        assert sum(s["n_windows"] for s in shards) == meta[split]["n_windows"]
        files = sorted(p.name for p in (tmp_path / "c" / split).iterdir())
        expected = [f"{s['name']}.{k}.npy" for s in shards for k in ("positions", "tokens")]
        assert files == sorted(["index.json", *expected])  # no lower case: no flag files


def test_same_seed_same_arrays(short_cds, tmp_path):
    splits, _, _ = short_cds
    tok = build_tokenizer({"type": "nucleotide"})
    build_corpus(tok, splits, tmp_path / "a", block_size=200, seed=5)
    build_corpus(tok, splits, tmp_path / "b", block_size=200, seed=5)
    build_corpus(tok, splits, tmp_path / "d", block_size=200, seed=6)
    a, _, _ = load_split(tmp_path / "a", "train")
    b, _, _ = load_split(tmp_path / "b", "train")
    d, _, _ = load_split(tmp_path / "d", "train")
    assert np.array_equal(a, b)
    assert not (a.shape == d.shape and np.array_equal(a, d))


def test_all_padding_window_is_an_integrity_error(tmp_path):
    def writer():
        return ShardWriter(tmp_path, "train", 8, 10, np.uint16, pad=0)

    rows = np.zeros((5, 8), dtype=np.uint16)
    rows[[0, 2, 4], 0] = 7
    w = writer()
    for row, fill in zip(rows, [1, 0, 1, 0, 1], strict=True):
        w.add(row, np.zeros(8, np.uint16), np.zeros(8, np.uint8), fill)
    with pytest.raises(DnalmError, match=r"2 train windows of shard-00000 are only padding"):
        w.flush()
    rows[[1, 3], :2] = 9
    w = writer()
    for row, fill in zip(rows, [1, 3, 1, 2, 1], strict=True):  # one count is wrong
        w.add(row, np.zeros(8, np.uint16), np.zeros(8, np.uint8), fill)
    with pytest.raises(DnalmError, match="non-pad tokens"):
        w.flush()
    w = writer()
    for row, fill in zip(rows, [1, 2, 1, 2, 1], strict=True):
        w.add(row, np.zeros(8, np.uint16), np.zeros(8, np.uint8), fill)
    (shard,) = w.close()
    assert (shard["name"], shard["n_windows"]) == ("shard-00000", 5)
    assert sorted(shard["files"]) == ["positions", "tokens"]  # no lower case: no flag file
    assert (
        shard["files"]["tokens"]["bytes"]
        == (tmp_path / "train/shard-00000.tokens.npy").stat().st_size
    )


def test_bad_input_is_reported_and_leaves_nothing(tmp_path):
    path = tmp_path / "bad.fa"
    path.write_text(">ok1\nACGTACGTAC\n>cds_9 desc\nACGTAC\nGT*AC\n")
    tok = build_tokenizer({"type": "kmer", "k": 3})
    with pytest.raises(InputFormatError, match=r"bad\.fa:3 cds_9.*'\*'.*position 9"):
        build_corpus(tok, {"train": [path]}, tmp_path / "out", block_size=32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.fa"]


def test_lower_case_u_and_iupac_input_are_normalised(tmp_path):
    path = tmp_path / "mixed.fa"
    path.write_text(">a\nacguacgury\n>b\nACGTACGTNN\n")
    tok = build_tokenizer({"type": "nucleotide"})
    build_corpus(tok, {"train": [path]}, tmp_path / "c", block_size=32, packing="padded")
    tokens, positions, _ = load_split(tmp_path / "c", "train")
    assert Counter(tok.decode(s) for s in _segments(tokens, positions, tok.pad_id)) == Counter(
        ["ACGTACGTNN", "ACGTACGTNN"]
    )


def test_argument_validation(short_cds, tmp_path):
    splits, _, _ = short_cds
    tok = build_tokenizer({"type": "nucleotide"})
    with pytest.raises(ConfigError, match="unknown split"):
        build_corpus(tok, {"training": splits["train"]}, tmp_path / "c", 64)
    with pytest.raises(ConfigError, match="packing"):
        build_corpus(tok, splits, tmp_path / "c", 64, packing="greedy")
    with pytest.raises(ConfigError, match="block_size"):
        build_corpus(tok, splits, tmp_path / "c", 70000)
    empty = _fasta(tmp_path / "empty.fa", ["AC"])
    with pytest.raises(DnalmError, match="train split has no sequences"):
        build_corpus(tok, {"train": [empty]}, tmp_path / "c", 64, min_length=10)
    assert not (tmp_path / "c").exists()


def test_real_cds_bpe_and_kmer_corpora(shared_data, tmp_path):
    path = shared_data / "cds_fasta" / "ecoli_highly_expressed_genes.fasta"
    seqs = [s for _h, s, _l in read_fasta(path)]
    bpe = build_tokenizer({"type": "bpe", "vocab_size": 256}, seqs)
    for tok in (bpe, build_tokenizer({"type": "kmer", "k": 6})):
        meta = build_corpus(tok, {"train": [path]}, tmp_path / tok.type, block_size=128)
        s = meta["train"]
        content = sum(tok.encode(x).size for x in seqs)
        assert s["n_content_tokens"] == content
        assert s["n_tokens"] == content + 2 * len(seqs)
        assert s["nt_per_token"] == pytest.approx(sum(map(len, seqs)) / content)
        tokens, positions, _ = load_split(tmp_path / tok.type, "train")
        assert tokens.max() < tok.vocab_size
        assert s["pad_fraction"] < 0.25  # first-fit packing leaves little padding
        # every chunk of every CDS appears; rebuilt CDS (first..last chunk) cover all bases
        segs = _segments(tokens, positions, tok.pad_id)
        assert sum(int((x != tok.bos_id).sum() - (x == tok.eos_id).sum()) for x in segs) == (
            content
        )


def test_meta_and_positions_follow_the_training_side_contract(short_cds, tmp_path):
    """The consumers in dnalm.training.lm_data / dnalm.modeling.models read what build_corpus
    writes."""
    splits, train, _ = short_cds
    tok = build_tokenizer({"type": "kmer", "k": 3})
    meta = build_corpus(tok, splits, tmp_path / "c", block_size=128)
    read = lm_data.load_meta(tmp_path / "c")
    assert lm_data.special_ids(read) == {k: meta[k] for k in lm_data.SPECIAL_KEYS}
    assert lm_data.nt_per_token(read, "validation") == pytest.approx(
        meta["validation"]["nt_per_token"]
    )
    tokens, positions = (np.asarray(a) for a in lm_data.load_split(tmp_path / "c", "train"))
    # the model side finds segments where a position does not continue the previous by 1
    cont = np.zeros_like(positions, dtype=bool)  # column 0 always starts a segment
    cont[:, 1:] = positions[:, 1:].astype(np.int64) == positions[:, :-1].astype(np.int64) + 1
    real = tokens != tok.pad_id
    assert int((~cont & real).sum()) == meta["train"]["n_segments"] == len(train)
