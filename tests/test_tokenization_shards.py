"""Sharded corpora: the shard size decides only where windows are cut into files (same
windows, same pretraining batches), the sharded reader behaves like the window array, the
fingerprint covers every shard, and soft-masked (lower-case) input gives per-token flags
for every tokenizer kind."""

from __future__ import annotations

import csv
import json
from collections import Counter

import numpy as np
import pytest

from dnalm.core.io import atomic_write, read_fasta, write_fasta
from dnalm.tokenization import corpus as corpus_mod
from dnalm.tokenization.build import build_tokenizer
from dnalm.tokenization.corpus import build_corpus
from dnalm.tokenization.shards import ShardedArray, token_dtype
from dnalm.training import lm_data
from dnalm.training.pretrain import pretrain

RECORD = 1000


def _fasta(path, seqs, prefix="r"):
    with atomic_write(path) as fh:
        write_fasta(fh, [(f"{prefix}{i}", s) for i, s in enumerate(seqs)])
    return path


@pytest.fixture(scope="module")
def chr4_records(shared_data):
    """The first 300 kb of yeast chrIV cut into 1 kb records (real sequence)."""
    path = shared_data / "fasta_gff" / "sacCer3_chrIV.fa.gz"
    _h, seq, _l = next(iter(read_fasta(path)))
    seq = seq[:300_000]
    return [seq[i : i + RECORD] for i in range(0, len(seq), RECORD)]


@pytest.fixture(scope="module")
def chr4_splits(chr4_records, tmp_path_factory):
    d = tmp_path_factory.mktemp("fa")
    return {
        "train": [_fasta(d / "train.fa.gz", chr4_records[:250])],
        "validation": [_fasta(d / "validation.fa.gz", chr4_records[250:], "v")],
    }


def _arrays(folder, split):
    return [np.asarray(a) for a in lm_data.load_split(folder, split)]


def test_shard_size_changes_files_not_windows(chr4_splits, chr4_records, tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_mod, "BATCH_NT", 60_000)  # several input batches per split
    tok = build_tokenizer({"type": "nucleotide"})
    many = build_corpus(tok, chr4_splits, tmp_path / "many", 256, seed=4, shard_tokens=256 * 40)
    one = build_corpus(tok, chr4_splits, tmp_path / "one", 256, seed=4)
    for split in ("train", "validation"):
        a, b = many[split], one[split]
        assert b["n_shards"] == 1
        assert a["n_shards"] == -(-a["n_windows"] // 40) > 3
        assert [s["n_windows"] for s in a["shards"][:-1]] == [40] * (a["n_shards"] - 1)
        drop = {"shards", "n_shards"}
        assert {k: v for k, v in a.items() if k not in drop} == {
            k: v for k, v in b.items() if k not in drop
        }
        pairs = zip(
            _arrays(tmp_path / "many", split), _arrays(tmp_path / "one", split), strict=True
        )
        for x, y in pairs:
            assert x.dtype == y.dtype == np.uint16
            assert np.array_equal(x, y)
    # the windows hold every record once: 1 kb -> 1002 tokens -> 4 chunks of <= 256
    tokens, positions = _arrays(tmp_path / "many", "train")
    assert many["train"]["n_segments"] == 4 * 250
    assert many["train"]["n_tokens"] == int((tokens != tok.pad_id).sum()) == 250 * 1002
    starts = np.flatnonzero((positions == 0) & (tokens == tok.bos_id))
    assert starts.size == 250
    flat_rows = tokens.reshape(-1)
    firsts = Counter(tok.decode(flat_rows[s + 1 : s + 61]) for s in starts)
    assert firsts == Counter(r[:60].upper() for r in chr4_records[:250])
    assert not many["train"]["has_lowercase"]
    assert not list((tmp_path / "many" / "train").glob("*.lowercase.npy"))


def test_pretraining_reads_the_same_batches_from_any_shard_size(chr4_splits, tmp_path):
    tok = build_tokenizer({"type": "nucleotide"})
    train = {"max_steps": 6, "micro_batch_size": 4, "eval_interval": 3, "log_interval": 1}
    train |= {"warmup_steps": 1, "eval_batches": 3, "threads": 1, "test_eval": False}
    curves = []
    for name, shard_tokens in (("many", 128 * 7), ("one", 1 << 24)):
        meta = build_corpus(tok, chr4_splits, tmp_path / name, 128, shard_tokens=shard_tokens)
        assert (meta["train"]["n_shards"] > 10) == (name == "many")
        out = tmp_path / f"model-{name}"
        pretrain(tmp_path / name, out, "gpt", "tiny", {"context": 128}, train, resume=False)
        with open(out / "curves.csv") as fh:
            curves.append([(r["step"], r["train_loss"], r["val_loss"]) for r in csv.DictReader(fh)])
    assert len(curves[0]) == 7
    assert curves[0][-1][0] == "6"
    assert curves[0] == curves[1]  # same loss at every step, same validation loss


def test_sharded_array_reads_like_the_window_array(tmp_path):
    rng = np.random.default_rng(0)
    full = rng.integers(0, 9, size=(23, 5)).astype(np.uint16)
    parts, paths = [], []
    for i, (a, b) in enumerate([(0, 7), (7, 14), (14, 21), (21, 23)]):
        path = tmp_path / f"s{i}.npy"
        np.save(path, full[a:b])
        parts.append(np.load(path, mmap_mode="r"))
        paths.append(path)
    arr = ShardedArray(parts, paths)
    assert arr.shape == full.shape
    assert len(arr) == 23
    assert arr.size == full.size
    idx = rng.permutation(23)[:11]
    assert np.array_equal(arr[idx], full[idx])  # rows in the order asked, across shards
    assert np.array_equal(arr[np.sort(idx)], full[np.sort(idx)])
    assert np.array_equal(arr[5], full[5])
    assert np.array_equal(arr[-1], full[-1])
    view = arr[5:16]  # a lazy view across three shards
    assert isinstance(view, ShardedArray)
    assert view.shape == (11, 5)
    assert np.array_equal(np.asarray(view), full[5:16])
    assert np.array_equal(view[[0, 10, 3]], full[5:16][[0, 10, 3]])
    assert np.array_equal(arr[2:20:3], full[2:20:3])
    assert np.array_equal(arr[3:9, 1:3], full[3:9, 1:3])
    assert arr.max() == full.max()
    with pytest.raises(IndexError):
        arr[np.array([23])]
    assert token_dtype(4096) is np.uint16
    assert token_dtype(70_000) is np.uint32


def test_fingerprint_covers_every_shard(chr4_splits, tmp_path):
    tok = build_tokenizer({"type": "kmer", "k": 3})
    meta = build_corpus(tok, chr4_splits, tmp_path / "c", 64, shard_tokens=64 * 50)
    last = meta["train"]["shards"][-1]["name"]
    path = tmp_path / "c" / "train" / f"{last}.positions.npy"
    original = np.load(path)
    changed = original.copy()
    changed[0, 0] = 1
    np.save(path, changed)
    with pytest.raises(lm_data.InputFormatError, match=rf"{last}\.positions\.npy: sha256 "):
        lm_data.corpus_fingerprint(tmp_path / "c", meta)  # meta.json's checksum is checked
    bare = json.loads(json.dumps(meta))  # a corpus without recorded checksums
    for split in ("train", "validation"):
        for shard in bare[split]["shards"]:
            del shard["files"]
    after = lm_data.corpus_fingerprint(tmp_path / "c", bare)
    np.save(path, original)
    before = lm_data.corpus_fingerprint(tmp_path / "c", bare)
    assert after["train"] != before["train"]
    assert after["validation"] == before["validation"]
    assert after["meta"] == before["meta"]


def test_a_bad_shard_is_named(chr4_splits, tmp_path):
    tok = build_tokenizer({"type": "nucleotide"})
    meta = build_corpus(tok, chr4_splits, tmp_path / "c", 256, shard_tokens=256 * 100)
    name = meta["train"]["shards"][1]["name"]
    path = tmp_path / "c" / "train" / f"{name}.positions.npy"
    pos = np.load(path)
    pos[3, 7] = 300
    np.save(path, pos)
    tokens, positions = lm_data.load_split(tmp_path / "c", "train")
    lm_data.check_split(tokens[:100], positions[:100], tok.vocab_size, 256, "unused")  # shard 0
    with pytest.raises(
        lm_data.ConfigError, match=rf"train/{name}\.positions\.npy: position id 300"
    ):
        lm_data.check_split(tokens, positions, tok.vocab_size, 256, "unused")
    (tmp_path / "c" / "train" / f"{name}.tokens.npy").unlink()
    with pytest.raises(lm_data.InputFormatError, match=rf"{name}\.tokens\.npy: missing"):
        lm_data.load_split(tmp_path / "c", "train")


# ---------------------------------------------------------------- soft-masked lower case

SOFT = "ACGTAC" + "gtacgt" + "ACGTAC"  # 18 nt, bases 6..11 soft-masked
EXPECTED = {  # per token of SOFT (no specials): does it cover a lower-case base?
    "nucleotide": [0] * 6 + [1] * 6 + [0] * 6,
    "kmer3": [0, 0, 1, 1, 0, 0],
    "kmer4": [0, 1, 1, 0, 0, 0],  # 4-mers [0,4) [4,8) [8,12) [12,16), then 2 single bases
    "kmer_overlapping3": [0] * 4 + [1] * 8 + [0] * 4,  # [i, i + 3) meets [6, 12)
    "codon": [0, 0, 1, 1, 0, 0],
}
SPECS = {
    "nucleotide": {"type": "nucleotide"},
    "kmer3": {"type": "kmer", "k": 3},
    "kmer4": {"type": "kmer", "k": 4},
    "kmer_overlapping3": {"type": "kmer_overlapping", "k": 3},
    "codon": {"type": "codon"},
}


def _windows(folder, split="train"):
    tokens, _pos = _arrays(folder, split)
    flags = lm_data.load_lowercase(folder, split)
    return tokens, None if flags is None else np.asarray(flags)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_soft_masked_bases_flag_their_tokens(name, tmp_path):
    tok = build_tokenizer(SPECS[name])
    path = _fasta(tmp_path / "soft.fa", [SOFT, SOFT.upper()])
    meta = build_corpus(tok, {"train": [path]}, tmp_path / "c", 32, packing="padded")
    tokens, flags = _windows(tmp_path / "c")
    n = len(EXPECTED[name])
    assert tokens.shape[0] == 2  # one window per record
    soft_row = 0 if flags[0].any() else 1
    assert flags[soft_row, 1 : n + 1].tolist() == EXPECTED[name]
    assert not flags[soft_row, 0]
    assert not flags[soft_row, n + 1 :].any()
    assert not flags[1 - soft_row].any()
    assert tok.decode(tokens[soft_row]) == tok.decode(tokens[1 - soft_row])  # upper-cased
    s = meta["train"]
    assert s["has_lowercase"]
    assert s["n_lowercase_nt"] == 6
    assert s["lowercase_fraction"] == pytest.approx(6 / 36)
    assert s["n_lowercase_tokens"] == sum(EXPECTED[name])


def test_keep_case_tokens_and_flags(tmp_path):
    tok = build_tokenizer({"type": "nucleotide", "keep_case": True})
    path = _fasta(tmp_path / "soft.fa", [SOFT])
    build_corpus(tok, {"train": [path]}, tmp_path / "c", 32, packing="padded", rc_augment=True)
    tokens, flags = _windows(tmp_path / "c")
    decoded = sorted(tok.decode(row) for row in tokens)
    rc = "GTACGT" + "acgtac" + "GTACGT"
    assert decoded == sorted([SOFT, rc])  # case kept in the tokens, RC keeps it too
    for row_t, row_f in zip(tokens, flags, strict=True):
        text = tok.decode(row_t)
        assert row_f[1:19].tolist() == [int(c.islower()) for c in text]


def test_bpe_flags_follow_the_token_offsets(chr4_records, tmp_path):
    seqs = [r[:300] for r in chr4_records[:40]]
    tok = build_tokenizer({"type": "bpe", "vocab_size": 200}, seqs)
    soft = [s[:100] + s[100:160].lower() + s[160:] for s in seqs[:10]]
    path = _fasta(tmp_path / "soft.fa", soft)
    meta = build_corpus(tok, {"train": [path]}, tmp_path / "c", 512, packing="padded")
    tokens, flags = _windows(tmp_path / "c")
    rows = {tok.decode(t): (t, f) for t, f in zip(tokens, flags, strict=True)}
    for s in soft:
        t, f = rows[s.upper()]
        ids = tok.encode(s)
        base_tok = tok.base_to_token_index(s)  # from the tokenizers library's offsets
        expected = np.zeros(ids.size, np.uint8)
        expected[np.unique(base_tok[100:160])] = 1
        assert f[1 : ids.size + 1].tolist() == expected.tolist()
        assert np.array_equal(t[1 : ids.size + 1], ids)
    assert meta["train"]["lowercase_fraction"] == pytest.approx(60 / 300)


def test_is_special_in_blocks_matches_the_lookup():
    tok = build_tokenizer({"type": "kmer", "k": 3})
    rng = np.random.default_rng(2)
    ids = rng.integers(0, tok.vocab_size, size=(3 << 20) + 17).astype(np.uint16)
    special = np.zeros(tok.vocab_size, bool)
    special[[v for v in tok.special_ids.values() if v is not None]] = True
    assert np.array_equal(tok.is_special(ids), special[ids.astype(np.int64)])
    assert tok.is_special(ids[:6].reshape(2, 3)).shape == (2, 3)


def test_build_memory_stops_growing_past_one_batch_and_shard(chr4_records, tmp_path, monkeypatch):
    """What the build allocates (tracemalloc's peak, numpy buffers included) grows with the
    input only until the input fills one batch and one shard: 16x as much input, past both,
    peaks within a few percent of 4x (README.md: the RSS beyond this is glibc's)."""
    import tracemalloc

    monkeypatch.setattr(corpus_mod, "BATCH_NT", 60_000)
    tok = build_tokenizer({"type": "nucleotide"})
    peaks = {}
    for n in (4, 16):  # 4 x 60 kb and 16 x 60 kb of real sequence; shards of 200 windows
        fasta = _fasta(tmp_path / f"x{n}.fa", chr4_records[:60] * n)
        tracemalloc.start()
        try:
            build_corpus(tok, {"train": [fasta]}, tmp_path / f"c{n}", 256, shard_tokens=256 * 200)
            peaks[n] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peaks[16] <= 1.05 * peaks[4], peaks
