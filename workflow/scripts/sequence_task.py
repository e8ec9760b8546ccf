"""Rule sequence_task: a user's sequence classification/regression dataset (dnalm.tasks), one
side of it optionally a generation set (TSTR / TRTS, dnalm.tasks.generated)."""

from pathlib import Path

from dnalm.core.artifacts import GENERATED_TSV
from dnalm.core.smk import run_script
from dnalm.tasks.generated import write_generated_table
from dnalm.tasks.sequence import build_sequence_task


def main(smk):
    cfg = smk.params.cfg
    out_dir = Path(smk.output.data).parent
    by_class = {"fasta_by_class": {}, "test_fasta_by_class": {}}
    for key, path in smk.input.items():
        if "__" in key:
            group, label = key.split("__", 1)
            by_class[group][label] = path
    table, test_table = smk.input.get("table"), smk.input.get("test_table")
    gen = smk.params.generated
    if gen:
        prompts = list(zip(smk.input.prompts, gen["species"], strict=True))
        generated = write_generated_table(
            out_dir / GENERATED_TSV,
            smk.input.generated,
            prompts,
            prompt_nt=gen["prompt_nt"],
            keep_prompt=gen["keep_prompt"],
        )
        if gen["role"] == "train":
            table = generated
        else:
            test_table = generated
    fr = cfg["fractions"]
    # what task.json records of the generated side
    keys = ("model", "set", "role", "keep_prompt", "prompt_nt")
    recorded = {k: gen[k] for k in keys} if gen else None
    build_sequence_task(
        out_dir,
        kind=cfg["kind"],
        table=table,
        fasta_by_class=by_class["fasta_by_class"] or None,
        test_table=test_table,
        test_fasta_by_class=by_class["test_fasta_by_class"] or None,
        fractions=(fr["train"], fr["validation"], fr["test"]),
        seed=cfg["seed"],
        generated=recorded,
    )


run_script(snakemake, main)
