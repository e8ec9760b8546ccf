# Gene completion: every causal model continues the start (10/25/50%) of held-out CDS; the
# continuations are translated with the sample's genetic code and judged against the true
# rest of the gene, beside three baselines (Markov, codon trigram, nearest training gene).


rule gene_completion_model:
    input:
        unpack(PLAN.genecomp_model_inputs),
    output:
        table="results/gene_completion/models/{model}.tsv",
    log:
        "results/logs/gene_completion/models/{model}.log",
    benchmark:
        "results/benchmarks/gene_completion/models/{model}.tsv"
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
        external=lambda wc: PLAN.model_external(wc.model),
        unit=lambda wc: PLAN.genecomp_unit(wc.model),
        samples=lambda wc: PLAN.genecomp_samples(),
        splits=lambda wc: PLAN.genecomp_splits(),
        settings=PLAN.gene_completion,
        device="auto",
    script:
        "../scripts/gene_completion_model.py"


rule gene_completion_baseline:
    input:
        unpack(PLAN.genecomp_baseline_inputs),
    output:
        table="results/gene_completion/baselines/{baseline}.tsv",
    log:
        "results/logs/gene_completion/baselines/{baseline}.log",
    benchmark:
        "results/benchmarks/gene_completion/baselines/{baseline}.tsv"
    wildcard_constraints:
        baseline=alternatives(PLAN.genecomp_baselines),
    conda:
        "../../envs/torch.yaml"
    params:
        samples=lambda wc: PLAN.genecomp_samples(),
        splits=lambda wc: PLAN.genecomp_splits(),
        settings=PLAN.gene_completion,
        markov_order=config["generate"]["markov_order"],
    script:
        "../scripts/gene_completion_baseline.py"


rule gene_completion_summary:
    input:
        tables=lambda wc: PLAN.genecomp_tables(),
    output:
        table=report(
            "results/gene_completion/summary.tsv",
            caption="../report/gene_completion_table.rst",
            category="6. Generation",
            labels={"table": "gene completion"},
        ),
        figure=report(
            "results/figures/gene_completion/summary.png",
            caption="../report/gene_completion_summary.rst",
            category="6. Generation",
            labels={"figure": "gene completion vs baselines"},
        ),
    log:
        "results/logs/gene_completion/summary.log",
    benchmark:
        "results/benchmarks/gene_completion/summary.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        sources=lambda wc: PLAN.genecomp_sources(),
    script:
        "../scripts/gene_completion_summary.py"
