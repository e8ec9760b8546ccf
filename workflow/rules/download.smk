# Acquisition: NCBI accessions and URLs are downloaded to resources/genomes/{sample}/
# (atomically, retried, verified); local files are used in place and only verified.


# Downloads need the internet (compute nodes often lack it); verification is quick.
localrules:
    download_primary,
    download_annotation,
    download_task_file,
    verify_sources,


rule download_primary:
    output:
        "resources/genomes/{sample}/primary",
    log:
        "results/logs/download/{sample}.primary.log",
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
    conda:
        "../../envs/data.yaml"
    params:
        sample=lambda wc: PLAN.samples[wc.sample],
        cfg=config["download"],
    script:
        "../scripts/download.py"


rule verify_sources:
    input:
        unpack(PLAN.source_inputs),
    output:
        "resources/genomes/{sample}/provenance.json",
    log:
        "results/logs/download/{sample}.verify.log",
    conda:
        "../../envs/data.yaml"
    params:
        sample=lambda wc: PLAN.samples[wc.sample],
    script:
        "../scripts/verify_sources.py"


# A task or BED file the config gives as a URL (dnalm.genome.taskfiles): fetched like a genome,
# checked against the #sha256= / #md5= after the URL.
rule download_task_file:
    output:
        "resources/task_files/{taskfile}/{name}",
    log:
        "results/logs/download/task_files/{taskfile}/{name}.log",
    conda:
        "../../envs/data.yaml"
    params:
        spec=PLAN.task_file,
        cfg=config["download"],
    script:
        "../scripts/download_task_file.py"
