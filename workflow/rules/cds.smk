# CDS extraction per sample (GBFF, genome FASTA + GFF3/GTF, CDS FASTA), the QC summary and
# its figure.


rule extract_cds:
    input:
        unpack(PLAN.cds_inputs),
    output:
        fasta="results/cds/{sample}.fa.gz",
        tsv="results/cds/{sample}.tsv",
    log:
        "results/logs/cds/{sample}.log",
    benchmark:
        "results/benchmarks/cds/{sample}.tsv"
    group:
        "sample_data"
    conda:
        "../../envs/data.yaml"
    params:
        sample=lambda wc: PLAN.samples[wc.sample],
        policy=config["cds"],
    script:
        "../scripts/extract_cds.py"


localrules:
    cds_qc,
    cds_qc_figure,


rule cds_qc:
    input:
        tsv=expand("results/cds/{sample}.tsv", sample=sorted(PLAN.cds_samples)),
    output:
        summary=report(
            "results/cds/qc_summary.tsv",
            caption="../report/cds_qc_table.rst",
            category="1. Data",
            labels={"table": "CDS QC summary"},
        ),
    log:
        "results/logs/cds/qc.log",
    benchmark:
        "results/benchmarks/cds/qc.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/cds_qc.py"


# The QC figure is a report step: drawn from the summary table and the per-sample tables.
rule cds_qc_figure:
    input:
        summary="results/cds/qc_summary.tsv",
        tsv=expand("results/cds/{sample}.tsv", sample=sorted(PLAN.cds_samples)),
    output:
        png=report(
            "results/cds/qc.png",
            caption="../report/cds_qc.rst",
            category="1. Data",
            labels={"figure": "CDS QC"},
        ),
    log:
        "results/logs/cds/qc_figure.log",
    benchmark:
        "results/benchmarks/cds/qc_figure.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/cds_qc_figure.py"
