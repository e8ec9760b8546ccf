# The robustness panel: a model's log-likelihood of fixed test windows against their reverse
# complement, shifts of a few bases, the tokenizer's phase and length modulo k, and one
# deleted base at a distance from the centre; one table and one figure per model.


rule robustness:
    input:
        unpack(PLAN.robustness_inputs),
    output:
        table="results/robustness/{model}/panel.tsv",
        figure=report(
            "results/figures/robustness/{model}.png",
            caption="../report/robustness.rst",
            category="9. Robustness",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "robustness panel"},
        ),
    log:
        "results/logs/robustness/{model}.log",
    benchmark:
        "results/benchmarks/robustness/{model}.tsv"
    wildcard_constraints:
        # a pretrain.models entry or a models.external one
        model=alternatives([*PLAN.models, *PLAN.external]),
    conda:
        "../../envs/torch.yaml"
    threads: config["finetune"]["threads"]
    resources:
        gpu=PLAN.gpus("finetune"),
    params:
        model_dir=lambda wc: PLAN.run_dir("pretrain", wc.model),
        external=lambda wc: PLAN.model_external(wc.model),
        k=lambda wc: PLAN.robustness_k(wc.model),
        test=lambda wc: PLAN.robustness_test_files(wc.model),
        settings=PLAN.robustness,
        device="auto",
    script:
        "../scripts/robustness_panel.py"
