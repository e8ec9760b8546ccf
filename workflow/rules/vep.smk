# Zero-shot variant effects: synonymous, missense and nonsense SNVs simulated in the held-out
# CDS of one sample, scored by every chosen model (log-likelihood ratio alt vs ref) and by
# two count-model baselines, and the AUROCs that say how well each score separates them.


rule vep_simulate:
    input:
        unpack(PLAN.vep_simulate_inputs),
    output:
        vcf="results/vep/{sample}/variants.vcf",
        table="results/vep/{sample}/variants.tsv",
    log:
        "results/logs/vep/{sample}/simulate.log",
    benchmark:
        "results/benchmarks/vep/{sample}/simulate.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        settings=PLAN.vep,
    script:
        "../scripts/vep_simulate.py"


rule vep_score:
    input:
        unpack(PLAN.vep_score_inputs),
    output:
        table="results/vep/{sample}/{model}.tsv",
        vcf="results/vep/{sample}/{model}.vcf",
    log:
        "results/logs/vep/{sample}/{model}.log",
    benchmark:
        "results/benchmarks/vep/{sample}/{model}.tsv"
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
        settings=PLAN.vep,
        device="auto",
    script:
        "../scripts/vep_score.py"


rule vep_summary:
    input:
        simulated="results/vep/{sample}/variants.tsv",
        scored=lambda wc: expand(
            "results/vep/{sample}/{model}.tsv",
            sample=wc.sample,
            model=PLAN.vep_models(),
        ),
    output:
        table=report(
            "results/vep/{sample}/auroc.tsv",
            caption="../report/vep_table.rst",
            category="7. Variant effects",
            labels={"table": "VEP AUROC"},
        ),
        figure=report(
            "results/figures/vep/{sample}_auroc.png",
            caption="../report/vep_auroc.rst",
            category="7. Variant effects",
            labels={"figure": "VEP AUROC per model vs baselines"},
        ),
    log:
        "results/logs/vep/{sample}/summary.log",
    benchmark:
        "results/benchmarks/vep/{sample}/summary.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        models=lambda wc: PLAN.vep_models(),
    script:
        "../scripts/vep_summary.py"
