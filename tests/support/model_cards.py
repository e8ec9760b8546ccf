"""A tiny model folder pretrained by the library, with its card and provenance as the
workflow's rule pretrain_card writes them (for the card and publishing tests)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from dnalm.core.provenance import build_provenance, write_provenance
from dnalm.genome.download import verify_file
from dnalm.report import cards
from dnalm.training.pretrain import pretrain
from tests.support.lm_corpus import make_corpus

TINY = {
    "max_steps": 6,
    "micro_batch_size": 8,
    "eval_interval": 3,
    "log_interval": 3,
    "warmup_steps": 1,
    "eval_batches": 2,
    "threads": 1,
}
CONFIG = {"pretrain": {"train": TINY}, "splits": {"seed": 11}}


def source_record(root: Path, sample: str, text: str) -> Path:
    """A sample's genome file and its record as rule verify_sources writes it."""
    genome = root / f"{sample}.fna.gz"
    genome.write_bytes(gzip.compress(text.encode()))
    digests = verify_file(genome, sample=sample, kind="primary")
    record = root / sample / "provenance.json"
    record.parent.mkdir(parents=True)
    entry = {"source": f"GCF_{sample}.1", "path": str(genome), "sha256": digests.sha256}
    record.write_text(
        json.dumps(
            {"sample": sample, "species": "E. coli", "format": "fasta", "files": {"primary": entry}}
        )
    )
    return record


def carded_model(root: Path) -> tuple[Path, dict[str, Path], Path]:
    """(model folder, sample -> source record, split assignment) of a tiny GPT pretrained
    under `root`, with its README.md and provenance.json."""
    corpus = make_corpus(root / "corpus")
    out = root / "models" / "tiny_gpt"
    pretrain(corpus, out, "gpt", "tiny", {}, TINY, resume=False)
    records = {s: source_record(root, s, f">{s}\nACGTACGT{s}\n") for s in ("ecoli", "bsub")}
    assignment = root / "assignment.tsv"
    assignment.write_text("id\tsplit\nc1\ttrain\nc2\ttest\n")
    leakage = root / "leakage_summary.tsv"
    leakage.write_text("split\tn\tmax_identity\ntest\t1\t0.41\n")
    prov = build_provenance(
        config=CONFIG,
        sample_records=records,
        inputs={"split_assignment": assignment},
        leakage=leakage,
        seeds={"pretrain": 0, "splits": 11},
    )
    write_provenance(out / "provenance.json", prov)
    run = json.loads((out / "run.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    cards.write_card(out / "README.md", cards.pretrain_card("tiny_gpt", run, metrics, prov))
    return out, records, assignment
