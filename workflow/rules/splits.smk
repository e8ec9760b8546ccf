# Leakage-free train/validation/test assignment: a seeded hash of each CDS sequence.


rule split_cds:
    input:
        "results/cds/{sample}.fa.gz",
    output:
        train="results/splits/{sample}/train.fa.gz",
        validation="results/splits/{sample}/validation.fa.gz",
        test="results/splits/{sample}/test.fa.gz",
        assignment="results/splits/{sample}/assignment.tsv",
    log:
        "results/logs/splits/{sample}.log",
    conda:
        "../../envs/data.yaml"
    params:
        seed=config["splits"]["seed"],
        fractions=config["splits"]["fractions"],
        allow_empty=config["cds"]["allow_empty"],
    script:
        "../scripts/split_cds.py"


localrules:
    gather_splits,


rule gather_splits:
    input:
        expand("results/splits/{sample}/assignment.tsv", sample=sorted(CDS_SAMPLES)),
    output:
        assignment="results/splits/assignment.tsv",
        summary=report(
            "results/splits/summary.tsv",
            caption="../report/splits.rst",
            category="1. Data",
            labels={"table": "Splits"},
        ),
    log:
        "results/logs/splits/gather.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/gather_splits.py"
