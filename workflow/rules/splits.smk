# Leakage-free train/validation/test assignment: a seeded hash of each CDS sequence
# (splits.method: identity) or of its MMseqs2 cluster across all samples (mmseqs), and the
# leakage report (best identity of each test CDS to any train CDS).


# Under mmseqs the CDS of all samples are clustered first, then each sample's split follows
# its clusters (identity: extract_cds splits each sample as it extracts it, cds.smk). Only
# then are these rules defined: their inputs list every sample.
if not PLAN.split_with_cds:

    rule cluster_cds:
        input:
            fasta=expand("results/cds/{sample}.fa.gz", sample=sorted(PLAN.cds_samples)),
            tsv=expand("results/cds/{sample}.tsv", sample=sorted(PLAN.cds_samples)),
        output:
            "results/splits/clusters.tsv",
        log:
            "results/logs/splits/cluster.log",
        benchmark:
            "results/benchmarks/splits/cluster.tsv"
        conda:
            "../../envs/data.yaml"
        threads: 4
        params:
            samples=sorted(PLAN.cds_samples),
            mmseqs=config["splits"]["mmseqs"],
        script:
            "../scripts/cluster_cds.py"

    rule split_cds:
        input:
            unpack(PLAN.split_cds_input),
        output:
            train="results/splits/{sample}/train.fa.gz",
            validation="results/splits/{sample}/validation.fa.gz",
            test="results/splits/{sample}/test.fa.gz",
            assignment="results/splits/{sample}/assignment.tsv",
        log:
            "results/logs/splits/{sample}.log",
        benchmark:
            "results/benchmarks/splits/{sample}.tsv"
        conda:
            "../../envs/data.yaml"
        params:
            split=PLAN.split_settings(),
        script:
            "../scripts/split_cds.py"


localrules:
    gather_splits,


rule gather_splits:
    input:
        **PLAN.splits_of_every_sample(),
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
    benchmark:
        "results/benchmarks/splits/gather.tsv"
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/gather_splits.py"


# The per-sample CDS tables are waited for through the QC summary (cds_qc reads them all).
rule split_leakage:
    input:
        summary="results/cds/qc_summary.tsv",
        assignment="results/splits/assignment.tsv",
    output:
        table="results/splits/leakage.tsv",
        summary=report(
            "results/splits/leakage_summary.tsv",
            caption="../report/leakage_table.rst",
            category="1. Data",
            labels={"table": "Train/test leakage"},
        ),
        png=report(
            "results/figures/splits/leakage.png",
            caption="../report/leakage.rst",
            category="1. Data",
            labels={"figure": "Train/test leakage"},
        ),
    log:
        "results/logs/splits/leakage.log",
    benchmark:
        "results/benchmarks/splits/leakage.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 4
    params:
        samples=sorted(PLAN.cds_samples),
        tsv=expand("results/cds/{sample}.tsv", sample=sorted(PLAN.cds_samples)),
        files=PLAN.split_files(sorted(PLAN.cds_samples), ["train", "test"]),
        method=config["splits"]["method"],
        mmseqs=config["splits"]["mmseqs"],
    script:
        "../scripts/split_leakage.py"
