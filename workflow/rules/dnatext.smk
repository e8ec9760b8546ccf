# DNA and text in one model (config `dnatext`, off by default): the paired DNA-text corpus
# from the CDS annotations, the DNA+text tokenizer, a tiny DNA+text masked LM, the DNA-only
# base-wise and table variants, and the evaluation table (what the text buys). With
# dnatext.probe, rule dnatext_embed embeds the probe task's fragments with the three models
# (regime dnatext) for the species probe of rules/probe.smk.


rule dnatext_corpus:
    input:
        unpack(PLAN.dnatext_corpus_inputs),
    output:
        pairs="results/dnatext/corpus/pairs.tsv",
        summary="results/dnatext/corpus/summary.tsv",
    log:
        "results/logs/dnatext/corpus.log",
    benchmark:
        "results/benchmarks/dnatext/corpus.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        samples=PLAN.dnatext_samples(),
        species=PLAN.dnatext_species(),
        max_dna_nt=config["dnatext"]["max_dna_nt"],
    script:
        "../scripts/dnatext_corpus.py"


rule dnatext_train:
    input:
        pairs="results/dnatext/corpus/pairs.tsv",
        tokenizer=PLAN.dnatext_tokenizer_input(),
    output:
        table=report(
            "results/dnatext/evaluation.tsv",
            caption="../report/dnatext_table.rst",
            category="7. DNA and text",
            labels={"table": "DNA+text evaluation"},
        ),
        model=directory("results/dnatext/models"),
    log:
        "results/logs/dnatext/train.log",
    benchmark:
        "results/benchmarks/dnatext/train.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["finetune"]["threads"]
    resources:
        gpu=PLAN.gpus("dnatext"),
    params:
        cfg=config["dnatext"],
    script:
        "../scripts/dnatext_train.py"


rule dnatext_embed:
    input:
        models="results/dnatext/models",
        task=f"results/tasks/{PLAN.probe['task']}/data.tsv",
    output:
        npz="results/probe/embeddings/dnatext/{ename}.npz",
        meta="results/probe/embeddings/dnatext/{ename}.json",
    log:
        "results/logs/probe/embed/dnatext/{ename}.log",
    benchmark:
        "results/benchmarks/probe/embed/dnatext/{ename}.tsv"
    wildcard_constraints:
        ename="dnatext|dna_basewise|dna_table",
    conda:
        "../../envs/torch.yaml"
    threads: config["finetune"]["threads"]
    resources:
        gpu=PLAN.gpus("dnatext"),
    params:
        probe=PLAN.probe,
        device=config["dnatext"]["device"],
    script:
        "../scripts/dnatext_embed.py"
