# Acquisition: NCBI accessions and URLs are downloaded to resources/genomes/{sample}/
# (atomically, retried, verified); local files are used in place and only verified.


# Downloads need the internet (compute nodes often lack it); verification is quick.
localrules:
    download_primary,
    download_annotation,
    download_task_file,
    verify_sources,
    fetch_external_model,


rule download_primary:
    output:
        "resources/genomes/{sample}/primary",
    log:
        "results/logs/download/{sample}.primary.log",
    benchmark:
        "results/benchmarks/download/{sample}.primary.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        sample=lambda wc: PLAN.samples[wc.sample],
        cfg=config["download"],
    script:
        "../scripts/download.py"


rule download_annotation:
    output:
        "resources/genomes/{sample}/annotation",
    log:
        "results/logs/download/{sample}.annotation.log",
    benchmark:
        "results/benchmarks/download/{sample}.annotation.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        sample=lambda wc: PLAN.samples[wc.sample],
        cfg=config["download"],
    script:
        "../scripts/download.py"


# One job per sample: a command of the library (dnalm.genome.jobs), not a script: job, whose
# source Snakemake looks up for every job at DAG build (benchmarks/bench_dag.py).
rule verify_sources:
    input:
        unpack(PLAN.source_inputs),
    output:
        "resources/genomes/{sample}/provenance.json",
    log:
        "results/logs/download/{sample}.verify.log",
    benchmark:
        "results/benchmarks/download/{sample}.verify.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        py=PY,
        sample=PLAN.sample_args,  # flags, quoted already
    shell:
        "{params.py} -m dnalm.genome.jobs verify-sources {params.sample}"
        " --primary-file {input.primary:q} --annotation-file={input.annotation:q}"
        " --record {output:q} --log {log:q}"


# A task or BED file the config gives as a URL (dnalm.genome.taskfiles): fetched like a genome,
# checked against the #sha256= / #md5= after the URL.
rule download_task_file:
    output:
        "resources/task_files/{taskfile}/{name}",
    log:
        "results/logs/download/task_files/{taskfile}/{name}.log",
    benchmark:
        "results/benchmarks/download/task_files/{taskfile}/{name}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        spec=PLAN.task_file,
        cfg=config["download"],
    script:
        "../scripts/download_task_file.py"


# A models.external entry (dnalm.core.hub): a hub id is fetched once into the Hugging Face
# cache (HF_HOME; nothing with HF_HUB_OFFLINE=1), a local folder is used in place; either way
# the sha256 of every code and weight file is recorded, and every later job checks the
# snapshot against it before reading it, offline.
rule fetch_external_model:
    output:
        record="resources/external/{ename}/provenance.json",
    log:
        "results/logs/external/{ename}.log",
    benchmark:
        "results/benchmarks/external/{ename}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        entry=lambda wc: PLAN.external_spec(wc.ename),
    script:
        "../scripts/fetch_external_model.py"
