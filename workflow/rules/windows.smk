# Genome and region windows of the genome/regions corpora (config `corpora`): each sample's
# genome cut into blocks that go to train/validation/test, windows inside blocks only, task
# windows removed from train by coordinates, and a leakage table per corpus; and the windows
# of a task corpus (one split of a task dataset).


rule genome_windows:
    input:
        unpack(PLAN.genome_windows_inputs),
    output:
        train="results/windows/{wcorpus}/{sample}/train.fa.gz",
        validation="results/windows/{wcorpus}/{sample}/validation.fa.gz",
        test="results/windows/{wcorpus}/{sample}/test.fa.gz",
        summary="results/windows/{wcorpus}/{sample}/windows.tsv",
        contigs="results/windows/{wcorpus}/{sample}/contigs.tsv",
        overlaps="results/windows/{wcorpus}/{sample}/overlaps.tsv",
    log:
        "results/logs/windows/{wcorpus}/{sample}.log",
    benchmark:
        "results/benchmarks/windows/{wcorpus}/{sample}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        spec=lambda wc: PLAN.corpora[wc.wcorpus],
        fractions=config["splits"]["fractions"],
        tasks=PLAN.window_tasks(),
    script:
        "../scripts/genome_windows.py"


localrules:
    window_leakage,


rule window_leakage:
    input:
        unpack(PLAN.window_leakage_inputs),
    output:
        leakage=report(
            "results/windows/{wcorpus}/leakage.tsv",
            caption="../report/window_leakage.rst",
            category="1. Data",
            subcategory="Genome windows",
            labels={"corpus": "{wcorpus}", "table": "leakage"},
        ),
        summary=report(
            "results/windows/{wcorpus}/summary.tsv",
            caption="../report/window_summary.rst",
            category="1. Data",
            subcategory="Genome windows",
            labels={"corpus": "{wcorpus}", "table": "windows"},
        ),
    log:
        "results/logs/windows/{wcorpus}/leakage.log",
    benchmark:
        "results/benchmarks/windows/{wcorpus}/leakage.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        spec=lambda wc: PLAN.corpora[wc.wcorpus],
        tasks=PLAN.window_tasks(),
    script:
        "../scripts/window_leakage.py"


rule task_windows:
    input:
        task=PLAN.task_corpus_input,
    output:
        train="results/windows/{tcorpus}/task/train.fa.gz",
        validation="results/windows/{tcorpus}/task/validation.fa.gz",
        test="results/windows/{tcorpus}/task/test.fa.gz",
        summary="results/windows/{tcorpus}/task/windows.tsv",
    log:
        "results/logs/windows/{tcorpus}/task.log",
    benchmark:
        "results/benchmarks/windows/{tcorpus}/task.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        spec=lambda wc: PLAN.corpora[wc.tcorpus],
        fractions=config["splits"]["fractions"],
    script:
        "../scripts/task_windows.py"
