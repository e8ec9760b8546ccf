# Generation: samples of every causal model (held-out prefixes and free samples), a count-model
# (Markov-k / codon trigram) baseline and the natural held-out set, judged by one metric
# table per model and a summary of all models.


rule generate:
    input:
        unpack(PLAN.generate_inputs),
    output:
        samples="results/generate/{model}/samples.fa.gz",
        markov="results/generate/{model}/markov.fa.gz",
        natural="results/generate/{model}/natural.fa.gz",
        table="results/generate/{model}/samples.tsv",
        metrics="results/generate/{model}/metrics.tsv",
    log:
        "results/logs/generate/{model}.log",
    benchmark:
        "results/benchmarks/generate/{model}.tsv"
    wildcard_constraints:
        # a pretrain.models entry or a models.external one (the plan checks its objective)
        model=alternatives([*PLAN.models, *PLAN.external]),
    conda:
        "../../envs/torch.yaml"
    threads: config["finetune"]["threads"]
    resources:
        gpu=PLAN.gpus("finetune"),
    params:
        model_dir=lambda wc: PLAN.run_dir("pretrain", wc.model),
        out_dir=lambda wc: f"results/generate/{wc.model}",
        settings=PLAN.generate,
        external=lambda wc: PLAN.model_external(wc.model),
        unit=lambda wc: PLAN.generate_unit(wc.model),
        cds=lambda wc: PLAN.generate_corpus(wc.model)["source"] == "cds",
        reference=lambda wc: PLAN.generate_reference() or "",
        reference_dir=lambda wc: (
            PLAN.run_dir("pretrain", PLAN.generate_reference())
            if PLAN.generate_reference()
            else None
        ),
        device="auto",
    script:
        "../scripts/generate_samples.py"


rule generation_summary:
    input:
        metrics=lambda wc: expand(
            "results/generate/{model}/metrics.tsv", model=PLAN.generate_models()
        ),
    output:
        table=report(
            "results/generate/summary.tsv",
            caption="../report/generation_table.rst",
            category="6. Generation",
            labels={"table": "generation metrics"},
        ),
        figure=report(
            "results/figures/generate/summary.png",
            caption="../report/generation_summary.rst",
            category="6. Generation",
            labels={"figure": "generation vs Markov baseline"},
        ),
    log:
        "results/logs/generate/summary.log",
    benchmark:
        "results/benchmarks/generate/summary.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        models=lambda wc: PLAN.generate_models(),
    script:
        "../scripts/generation_summary.py"
