"""The paired DNA-text corpus: each kept CDS with its annotation text.

Input: the CDS tables ``results/cds/{sample}.tsv`` (columns ``gene``, ``product``, ``note``,
``function``; the last two exist in tables written since they were added) and the splits
``results/splits/{sample}/{split}.fa.gz`` (the first word of a header is the CDS id), plus the
species of each sample from the sample sheet. A CDS keeps its split, so no test CDS reaches
training.

Text: a CDS without any of product, gene, note and function contributes nothing; a product
of ``hypothetical protein`` alone counts as text (it is the annotation). Each pair is
rendered into one of :data:`TEMPLATES` (chosen by a hash of the CDS id, so reruns agree),
with the sequence inside ``<dna>...</dna>`` (cut to its first ``max_dna_nt`` bases when
set). The product sentence used by the retrieval evaluation is
``<dna>SEQ</dna> encodes {product} .``

Outputs: ``pairs.tsv`` (sample, cds_id, split, species, gene, product, note, function,
sequence, text) and ``summary.tsv`` (per sample and split: pairs, mean text words, distinct
products).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from dnalm.core.artifacts import PAIRS_TSV, SUMMARY_TSV
from dnalm.core.errors import InputFormatError
from dnalm.core.io import atomic_write, read_fasta

SPLITS = ("train", "validation", "test")
TEXT_FIELDS = ("product", "gene", "note", "function")
PAIR_COLUMNS = (
    "sample",
    "cds_id",
    "split",
    "species",
    *TEXT_FIELDS,
    "sequence",
    "text",
)
TEMPLATES = (
    "{species} gene {gene} encodes {product} : <dna>{seq}</dna> {extra}",
    "<dna>{seq}</dna> is a coding sequence of {species} for {product} {gene} . {extra}",
    "the {product} of {species} {extra} is encoded by <dna>{seq}</dna>",
)


def product_sentence(seq: str, product: str) -> str:
    """The sentence whose text tokens the retrieval evaluation scores."""
    return f"<dna>{seq}</dna> encodes {product} ."


def _clean(value) -> str:
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    return " ".join(text.replace("<", " ").replace(">", " ").split())


def render(row: Mapping[str, str], seq: str) -> str:
    """One corpus sentence for a CDS `row` (its text fields, species, cds_id) and `seq`."""
    template = TEMPLATES[zlib.crc32(str(row["cds_id"]).encode()) % len(TEMPLATES)]
    extra = " ; ".join(_clean(row.get(k)) for k in ("note", "function") if _clean(row.get(k)))
    text = template.format(
        species=_clean(row.get("species")) or "an organism",
        gene=_clean(row.get("gene")),
        product=_clean(row.get("product")) or "a protein",
        seq=seq,
        extra=extra,
    )
    return " ".join(text.split())


def read_cds_table(path: str | Path) -> pd.DataFrame:
    """The kept rows of one CDS table, with every text field present (empty if absent)."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    for col in ("cds_id", "status"):
        if col not in table.columns:
            raise InputFormatError(f"{path}: not a CDS table (no {col!r} column)")
    table = table[table["status"] == "kept"].copy()
    for col in TEXT_FIELDS:
        if col not in table.columns:
            table[col] = ""
    return table


def build_pairs(
    samples: Sequence[str],
    cds_tables: Sequence[str | Path],
    split_fastas: Mapping[str, Mapping[str, str | Path]],
    species: Mapping[str, str],
    max_dna_nt: int | None = None,
) -> pd.DataFrame:
    """The pairs table (module docstring). `split_fastas[sample][split]` is a FASTA path."""
    rows = []
    for sample, table_path in zip(samples, cds_tables, strict=True):
        table = read_cds_table(table_path).set_index("cds_id")
        for split in SPLITS:
            for header, seq, _line in read_fasta(split_fastas[sample][split]):
                cds_id = header.split()[0]
                if cds_id not in table.index:
                    continue
                ann = table.loc[cds_id]
                fields = {k: _clean(ann[k]) for k in TEXT_FIELDS}
                if not any(fields.values()):
                    continue
                seq = seq.upper()[: max_dna_nt or None]
                row = {"sample": sample, "cds_id": cds_id, "split": split}
                row["species"] = species.get(sample, "")
                row.update(fields)
                row["sequence"] = seq
                row["text"] = render(row, seq)
                rows.append(row)
    return pd.DataFrame(rows, columns=list(PAIR_COLUMNS))


def summarise(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs, mean words of text (DNA excluded) and distinct products per sample and split."""
    if pairs.empty:
        return pd.DataFrame(columns=["sample", "split", "pairs", "mean_text_words", "products"])
    words = pairs["text"].str.replace(r"<dna>.*?</dna>", " ", regex=True).str.split().str.len()
    out = (
        pairs.assign(words=words)
        .groupby(["sample", "split"], sort=True)
        .agg(
            pairs=("cds_id", "size"),
            mean_text_words=("words", "mean"),
            products=("product", "nunique"),
        )
        .reset_index()
    )
    out["mean_text_words"] = out["mean_text_words"].round(2)
    return out


def write_corpus(pairs: pd.DataFrame, out_dir: str | Path) -> None:
    """Write ``pairs.tsv`` and ``summary.tsv`` into `out_dir` atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if pairs.empty:
        raise InputFormatError(
            "the paired DNA-text corpus is empty: no kept CDS has a product, gene, note or "
            "function (samples from CDS FASTA or gene calling carry no annotation text)"
        )
    with atomic_write(out / PAIRS_TSV) as fh:
        pairs.to_csv(fh, sep="\t", index=False)
    with atomic_write(out / SUMMARY_TSV) as fh:
        summarise(pairs).to_csv(fh, sep="\t", index=False)


def read_pairs(path: str | Path, split: str | None = None) -> pd.DataFrame:
    """The pairs table (of one split)."""
    pairs = pd.read_csv(Path(path), sep="\t", dtype=str, keep_default_na=False)
    return pairs if split is None else pairs[pairs["split"] == split].reset_index(drop=True)
