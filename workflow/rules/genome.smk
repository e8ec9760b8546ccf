# Per-sample genome FASTA + contig table and feature table (every format but cds_fasta), for
# stages that work on genome sequence (genome windows, annotation regions).


rule genome_fasta:
    input:
        unpack(PLAN.genome_inputs),
    output:
        fasta="results/genome/{sample}/genome.fa.gz",
        contigs="results/genome/{sample}/contigs.tsv",
    log:
        "results/logs/genome/{sample}.fasta.log",
    benchmark:
        "results/benchmarks/genome/{sample}.fasta.tsv"
    group:
        "sample_data"
    conda:
        "../../envs/data.yaml"
    params:
        sample=lambda wc: PLAN.samples[wc.sample],
    script:
        "../scripts/genome_fasta.py"


rule genome_features:
    input:
        unpack(PLAN.feature_inputs),
    output:
        "results/genome/{sample}/features.tsv",
    log:
        "results/logs/genome/{sample}.features.log",
    benchmark:
        "results/benchmarks/genome/{sample}.features.tsv"
    group:
        "sample_data"
    conda:
        "../../envs/data.yaml"
    params:
        sample=lambda wc: PLAN.samples[wc.sample],
    script:
        "../scripts/genome_features.py"
