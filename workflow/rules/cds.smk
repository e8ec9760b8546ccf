# CDS extraction per sample (GBFF, genome FASTA + GFF3/GTF, CDS FASTA), the QC summary and
# its figure.

# Under splits.method identity a sample's split needs nothing but its own CDS, so the job
# that extracts them also splits them (outputs and log of splits.smk's split_cds, which runs
# on its own only under mmseqs, after cluster_cds): one job per sample fewer, which is what
# the DAG build of a sheet of thousands of genomes pays for (benchmarks/bench_dag.py). For the
# same reason the job is a command of the library (dnalm.genome.jobs), not a script: job.
_SPLIT_OUTPUTS = (
    {
        "train": "results/splits/{sample}/train.fa.gz",
        "validation": "results/splits/{sample}/validation.fa.gz",
        "test": "results/splits/{sample}/test.fa.gz",
        "assignment": "results/splits/{sample}/assignment.tsv",
    }
    if PLAN.split_with_cds
    else {}
)
_EXTRACT_LOGS = {
    "cds": "results/logs/cds/{sample}.log",
    **({"splits": "results/logs/splits/{sample}.log"} if PLAN.split_with_cds else {}),
}
# the split's files, when the job splits too (its settings are in params.args)
_SPLIT_ARGS = (
    " --split-log {log.splits:q} --train {output.train:q} --validation"
    " {output.validation:q} --test {output.test:q} --assignment {output.assignment:q}"
    if PLAN.split_with_cds
    else ""
)


rule extract_cds:
    input:
        unpack(PLAN.cds_inputs),
    output:
        **_SPLIT_OUTPUTS,
        fasta="results/cds/{sample}.fa.gz",
        tsv="results/cds/{sample}.tsv",
    log:
        **_EXTRACT_LOGS,
    benchmark:
        "results/benchmarks/cds/{sample}.tsv"
    group:
        "sample_data"
    conda:
        "../../envs/data.yaml"
    params:
        py=PY,
        sample=PLAN.sample_args,  # flags, quoted already
        args=PLAN.extract_args(),  # the flags of policy and split, quoted already
        # what a change of reruns the job (Snakemake records these params, not the flags)
        policy=config["cds"],
        split=PLAN.split_settings() if PLAN.split_with_cds else None,
    shell:
        "{params.py} -m dnalm.genome.jobs extract-cds {params.sample} {params.args}"
        " --primary-file {input.primary:q} --annotation-file={input.annotation:q}"
        " --fasta {output.fasta:q} --tsv {output.tsv:q} --log {log.cds:q}"
        + _SPLIT_ARGS


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
# It waits for the summary, which waits for every per-sample table (N inputs once, not twice).
rule cds_qc_figure:
    input:
        summary="results/cds/qc_summary.tsv",
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
    params:
        tsv=expand("results/cds/{sample}.tsv", sample=sorted(PLAN.cds_samples)),
    script:
        "../scripts/cds_qc_figure.py"
