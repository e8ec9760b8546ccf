# The reproduction table (config `reproduce.rows`): each published number beside ours, with
# the seed spread, the comparison with the baseline and the deviation from the paper's setup.


localrules:
    reproduce_table,


rule reproduce_table:
    input:
        unpack(PLAN.reproduce_inputs),
    output:
        tsv=report(
            "results/reproduce/table.tsv",
            caption="../report/reproduce_table.rst",
            category="0. Reproduction",
            labels={"table": "published vs ours"},
        ),
        md="results/reproduce/table.md",
    log:
        "results/logs/reproduce/table.log",
    benchmark:
        "results/benchmarks/reproduce/table.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        rows=PLAN.reproduce_rows,
    script:
        "../scripts/reproduce_table.py"
