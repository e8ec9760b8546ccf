"""Rule sequence_task: a user's sequence classification/regression dataset (dnalm.tasks)."""

from dnalm.core.smk import run_script
from dnalm.tasks.sequence import build_sequence_task


def main(smk):
    cfg = smk.params.cfg
    by_class = {"fasta_by_class": {}, "test_fasta_by_class": {}}
    for key, path in smk.input.items():
        if "__" in key:
            group, label = key.split("__", 1)
            by_class[group][label] = path
    fr = cfg["fractions"]
    build_sequence_task(
        smk.output.data.rsplit("/", 1)[0],
        kind=cfg["kind"],
        table=smk.input.get("table"),
        fasta_by_class=by_class["fasta_by_class"] or None,
        test_table=smk.input.get("test_table"),
        test_fasta_by_class=by_class["test_fasta_by_class"] or None,
        fractions=(fr["train"], fr["validation"], fr["test"]),
        seed=cfg["seed"],
    )


run_script(snakemake, main)
