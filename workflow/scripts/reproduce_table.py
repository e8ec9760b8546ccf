"""Rule reproduce_table: the published numbers beside ours (dnalm.report.reproduce)."""

from dnalm.core.smk import run_script
from dnalm.report.reproduce import build_table, write_table


def main(smk):
    pretrain, comparisons, probe = {}, {}, None
    for key, value in smk.input.items():
        kind, _, name = key.partition("__")
        if kind == "pretrain":
            pretrain[name] = list(value) if not isinstance(value, str) else [value]
        elif kind == "comparison":
            comparisons[name] = str(value)
        elif kind == "probe":
            probe = str(value)
    table = build_table(smk.params.rows, pretrain, comparisons, probe)
    write_table(table, smk.output.tsv, smk.output.md)


run_script(snakemake, main)
