"""Cut the embedded demo data (tests/data) from the shared real data.

Every file here is real public data, copied unchanged or only cut (no synthetic sequence);
tests/data/README.md lists each file with its origin and licence. The output is
deterministic: rerunning the script gives byte-identical files (gzip with mtime 0 and no
file name in the header).

    python tests/data/make_demo_data.py [--shared DIR] [--out DIR]

DIR defaults: --shared $DNALM_SHARED_DATA, else ../shared/data (from the repository root);
--out tests/data (next to this script). Needs Biopython (a dependency of dnalm).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import random
import shutil
from pathlib import Path

from Bio import SeqIO
from Bio.SeqFeature import FeatureLocation, SeqFeature

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# Sizes of the cuts (change them here, then rerun and update README.md).
SPYOGENES_NT = 300_000  # first 300 kb of the S. pyogenes M1 GAS chromosome
YEAST_NT = 300_000  # first ~300 kb of yeast chrIV, moved to the next gene-free base
TF_WINDOWS = 2_500  # TF-binding windows, a seeded sample kept in file order
TF_SEED = 0
CHIP_TRAIN = 600  # first 600 peaks of each ChIP-seq training file (the files are unsorted)

COPIED = [  # (source, destination), both relative to the data folders; copied byte for byte
    ("genbank/NC_005816.gb", "genbank/NC_005816.gb"),
    ("genbank/NC_001422.gbk", "genbank/NC_001422.gbk"),
    ("genbank/NC_005816.fna", "fasta/NC_005816.fna"),  # genome FASTA only: gene calling
    ("genbank/phage_T4_test.gbff.gz", "genbank/phage_T4_test.gbff.gz"),
    ("genbank/Mgallisepticum.gbff.gz", "genbank/Mgallisepticum.gbff.gz"),
    ("tasks/chipseq_oct4_vs_mafk/oct4_test.fa", "tasks/chipseq_oct4_vs_mafk/oct4_test.fa"),
    ("tasks/chipseq_oct4_vs_mafk/mafk_test.fa", "tasks/chipseq_oct4_vs_mafk/mafk_test.fa"),
]


def open_text(path: Path):
    """A text handle on a plain or gzip-compressed file (decided by the magic bytes)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def write_gz(path: Path, text: str) -> None:
    """gzip `text` reproducibly: mtime 0, no file name in the header, level 9."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(text.encode("utf-8"))


def wrap(seq: str, width: int = 60) -> str:
    return "".join(seq[i : i + width] + "\n" for i in range(0, len(seq), width))


def copy_files(shared: Path, out: Path) -> None:
    for src, dst in COPIED:
        (out / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared / src, out / dst)


def gzip_cds_fasta(shared: Path, out: Path) -> None:
    """The E. coli CDS FASTA, unchanged but gzip-compressed."""
    with open_text(shared / "cds_fasta/ecoli_highly_expressed_genes.fasta") as fh:
        write_gz(out / "cds_fasta/ecoli_highly_expressed_genes.fasta.gz", fh.read())


def cut_genbank(shared: Path, out: Path) -> None:
    """The first SPYOGENES_NT bases of S. pyogenes M1 GAS with the features that lie wholly
    inside; the record-wide source feature is kept (shortened) so the organism and taxonomy
    still give genetic code 11."""
    with open_text(shared / "genbank/Streptococcus_pyogenes_M1_GAS.gb.gz") as fh:
        rec = SeqIO.read(fh, "genbank")
    full = len(rec)
    cut = rec[:SPYOGENES_NT]  # keeps only features wholly inside the cut
    spanning = [f for f in rec.features if f.type in ("source", "fasta_record")]
    cut.features = [
        SeqFeature(FeatureLocation(0, SPYOGENES_NT, strand=f.location.strand), type=f.type,
                   qualifiers=dict(f.qualifiers))
        for f in spanning
    ] + [f for f in cut.features if f.type not in ("source", "fasta_record")]  # fmt: skip
    cut.annotations = dict(rec.annotations)
    cut.id, cut.name = rec.id, rec.name
    # the GenBank writer adds the final full stop
    cut.description = f"{rec.description.rstrip('.')}, bases 1 to {SPYOGENES_NT} of {full}"
    buf = io.StringIO()
    SeqIO.write(cut, buf, "genbank")
    write_gz(out / "genbank/Streptococcus_pyogenes_M1_GAS.cut300k.gb.gz", buf.getvalue())


def _gtf_transcripts(lines: list[str]) -> dict[str, tuple[int, int]]:
    spans: dict[str, tuple[int, int]] = {}
    for line in lines:
        if line.startswith("#") or not line.strip():
            continue
        f = line.rstrip("\n").split("\t")
        tid = f[8].split('transcript_id "', 1)[1].split('"', 1)[0]
        lo, hi = spans.get(tid, (int(f[3]), int(f[4])))
        spans[tid] = (min(lo, int(f[3])), max(hi, int(f[4])))
    return spans


def cut_yeast(shared: Path, out: Path) -> None:
    """The first ~YEAST_NT bases of chrIV (letter case kept, wrapped at 60) and exactly the
    GTF rows inside the cut. The end is moved forward to the first base no transcript spans,
    so every transcript is either wholly inside (all its rows kept) or wholly outside."""
    with open_text(shared / "fasta_gff/sacCer3_chrIV.annotation.gtf.gz") as fh:
        gtf = fh.readlines()
    spans = _gtf_transcripts(gtf)
    end = YEAST_NT
    while True:
        over = [hi for lo, hi in spans.values() if lo <= end < hi]
        if not over:
            break
        end = max(over)
    with open_text(shared / "fasta_gff/sacCer3_chrIV.fa.gz") as fh:
        records = list(SeqIO.parse(fh, "fasta"))
    if [r.id for r in records] != ["chrIV"]:
        raise SystemExit(f"expected one FASTA record, chrIV; got {[r.id for r in records]}")
    seq = str(records[0].seq)[:end]
    write_gz(out / "fasta_gff/sacCer3_chrIV.cut.fa.gz", f">{records[0].description}\n" + wrap(seq))
    kept = [
        line
        for line in gtf
        if line.startswith("#") or (line.strip() and int(line.split("\t")[4]) <= end)
    ]
    write_gz(out / "fasta_gff/sacCer3_chrIV.cut.annotation.gtf.gz", "".join(kept))
    print(f"yeast chrIV: cut at {end} nt, {sum(hi <= end for _, hi in spans.values())} transcripts")


def cut_tf_binding(shared: Path, out: Path) -> None:
    """TF_WINDOWS windows (a seeded sample, kept in file order) in the same two-file format:
    the sequence rows and the matching score columns, their text unchanged."""
    src = shared / "tasks/tf_binding"
    with open_text(src / "chr22_sequences.txt.gz") as fh:
        seq_lines = fh.read().splitlines()
    header, rows = seq_lines[0], seq_lines[1:]
    if header.split("\t") != ["sequence", "window_name"]:
        raise SystemExit(f"unexpected header of chr22_sequences.txt.gz: {header!r}")
    keep = sorted(random.Random(TF_SEED).sample(range(len(rows)), TF_WINDOWS))
    names = [rows[i].split("\t")[1] for i in keep]
    write_gz(
        out / "tasks/tf_binding/chr22_sequences.txt.gz",
        "\n".join([header] + [rows[i] for i in keep]) + "\n",
    )
    with open_text(src / "chr22_scores.txt.gz") as fh:
        score_lines = fh.read().splitlines()
    columns = {name: j for j, name in enumerate(score_lines[0].split("\t"))}
    idx = [columns[name] for name in names]
    body = []
    for line in score_lines:
        cells = line.split("\t")
        body.append("\t".join(cells[j] for j in idx))
    write_gz(out / "tasks/tf_binding/chr22_scores.txt.gz", "\n".join(body) + "\n")
    print(f"tf_binding: {len(names)} of {len(rows)} windows, {len(score_lines) - 1} score rows")


def cut_chipseq(shared: Path, out: Path) -> None:
    """The first CHIP_TRAIN records of each training FASTA, record text unchanged."""
    for cls in ("oct4", "mafk"):
        with open_text(shared / f"tasks/chipseq_oct4_vs_mafk/{cls}_train.fa.gz") as fh:
            lines = fh.read().splitlines(keepends=True)
        kept, n = [], 0
        for line in lines:
            if line.startswith(">"):
                n += 1
                if n > CHIP_TRAIN:
                    break
            kept.append(line)
        if n <= CHIP_TRAIN:
            raise SystemExit(f"{cls}_train.fa.gz: fewer than {CHIP_TRAIN + 1} records")
        write_gz(out / f"tasks/chipseq_oct4_vs_mafk/{cls}_train.fa.gz", "".join(kept))


def main(argv: list[str] | None = None) -> int:
    default_shared = os.environ.get("DNALM_SHARED_DATA") or str(REPO.parent / "shared/data")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=Path(default_shared))
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    if not (args.shared / "README.md").is_file():
        parser.error(f"{args.shared} is not the shared data folder (no README.md)")
    copy_files(args.shared, args.out)
    gzip_cds_fasta(args.shared, args.out)
    cut_genbank(args.shared, args.out)
    cut_yeast(args.shared, args.out)
    cut_tf_binding(args.shared, args.out)
    cut_chipseq(args.shared, args.out)
    total = 0
    for path in sorted(p for p in args.out.rglob("*") if p.is_file()):
        if path.suffix in (".py", ".md"):
            continue
        size = path.stat().st_size
        total += size
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        print(f"{size:>9}  {digest}  {path.relative_to(args.out)}")
    print(f"{total:>9}  total")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
