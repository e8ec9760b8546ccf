"""Rules pretrain_card and finetune_card: the model card (README.md) and provenance.json of
one model folder (dnalm.report.cards, dnalm.core.provenance)."""

import csv

from dnalm.core.io import read_json_object
from dnalm.core.provenance import build_provenance, external_base, write_provenance
from dnalm.core.smk import run_script
from dnalm.report import cards


def _sources(smk) -> dict[str, str]:
    """sample -> its verified source record (resources/genomes/{sample}/...)."""
    files = smk.input.get("sources", [])
    files = [files] if isinstance(files, str) else list(files)
    return {path.split("/")[-2]: path for path in files}


def main(smk):
    inp = smk.input
    finetuned = hasattr(inp, "comparison")
    metrics = read_json_object(inp.metrics, "test metrics")
    run_record = {} if finetuned else read_json_object(inp.run, "run record")
    # the seeds the runs used, as they recorded them (defaults included)
    seeds = dict(smk.params.seeds)
    if finetuned:
        seeds["finetune"] = (metrics.get("config") or {}).get("seed")
    else:
        seeds["pretrain"] = (run_record.get("train") or {}).get("seed")
    provenance = build_provenance(
        config=smk.params.config,
        sample_records=_sources(smk),
        inputs={"split_assignment": inp.get("assignment"), "task_table": inp.get("task")},
        leakage=inp.get("leakage"),
        leakage_reason="splits.leakage is false, or the corpus has no split of ours",
        seeds=seeds,
        # an external base model: its record, and the pin of its code (if it has any)
        extra=external_base(read_json_object(inp.external, "external model record"))
        if inp.get("external")
        else None,
    )
    if finetuned:
        with open(inp.comparison, encoding="utf-8", newline="") as fh:
            table = list(csv.DictReader(fh, delimiter="\t"))
        row, baseline = cards.comparison_rows(table, smk.wildcards.run, inp.comparison)
        card = cards.finetune_card(
            smk.wildcards.run,
            smk.wildcards.ftask,
            metrics,
            row,
            baseline,
            smk.params.base_model,
            provenance,
        )
    else:
        card = cards.pretrain_card(smk.wildcards.model, run_record, metrics, provenance)
    write_provenance(smk.output.provenance, provenance)
    cards.write_card(smk.output.card, card)


run_script(snakemake, main)
