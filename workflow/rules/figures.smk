# Figures of the pretraining stage (DNA-LLM's loss curves and training-time comparison).


rule pretrain_figures:
    input:
        expand(
            "results/models/{model}/{f}",
            model=PLAN.pretrain_figure_models(),
            f=["curves.csv", "run.json", "metrics.json"],
        ),
    output:
        table=report(
            "results/models/summary.tsv",
            caption="../report/pretrain_table.rst",
            category="3. Pretraining",
            labels={"table": "models"},
        ),
        curves=report(
            "results/figures/pretrain/curves.png",
            caption="../report/pretrain_curves.rst",
            category="3. Pretraining",
            labels={"figure": "loss curves"},
        ),
        time=report(
            "results/figures/pretrain/time.png",
            caption="../report/pretrain_time.rst",
            category="3. Pretraining",
            labels={"figure": "training time"},
        ),
    log:
        "results/logs/figures/pretrain.log",
    benchmark:
        "results/benchmarks/figures/pretrain.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        models=PLAN.pretrain_figure_models(),
    script:
        "../scripts/pretrain_figures.py"
