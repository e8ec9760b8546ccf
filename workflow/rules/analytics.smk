# Checkpoint analytics: at each kept checkpoint of a pretraining run (analytics.runs; such a
# run keeps every checkpoint) or at each run of a sweep (analytics.sweeps), bits/nt and RC
# consistency on validation windows, species-probe accuracy and VEP AUROC, and the Spearman
# correlation of each cheap metric with each downstream one over the points. One job a run.


rule analytics_run:
    input:
        unpack(PLAN.analytics_inputs),
    output:
        table=report(
            "results/analytics/runs/{model}/checkpoints.tsv",
            caption="../report/analytics_table.rst",
            category="3. Pretraining",
            subcategory="checkpoint analytics",
            labels={"run": "{model}", "table": "metrics per checkpoint"},
        ),
        correlations=report(
            "results/analytics/runs/{model}/correlations.tsv",
            caption="../report/analytics_correlations.rst",
            category="3. Pretraining",
            subcategory="checkpoint analytics",
            labels={"run": "{model}", "table": "rank correlations"},
        ),
        figure=report(
            "results/figures/analytics/runs/{model}.png",
            caption="../report/analytics_figure.rst",
            category="3. Pretraining",
            subcategory="checkpoint analytics",
            labels={"run": "{model}", "figure": "cheap vs downstream metrics"},
        ),
    log:
        "results/logs/analytics/runs/{model}.log",
    benchmark:
        "results/benchmarks/analytics/runs/{model}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["finetune"]["threads"]
    resources:
        gpu=PLAN.gpus("finetune"),
    params:
        model_dirs=PLAN.analytics_model_dirs,
        validation=PLAN.analytics_validation_files,
        settings=PLAN.analytics_settings(),
        device="auto",
    script:
        "../scripts/checkpoint_analytics.py"


rule analytics_sweep:
    input:
        unpack(PLAN.analytics_inputs),
    output:
        table=report(
            "results/analytics/sweeps/{sweep}/checkpoints.tsv",
            caption="../report/analytics_table.rst",
            category="3. Pretraining",
            subcategory="checkpoint analytics",
            labels={"run": "sweep {sweep}", "table": "metrics per run"},
        ),
        correlations=report(
            "results/analytics/sweeps/{sweep}/correlations.tsv",
            caption="../report/analytics_correlations.rst",
            category="3. Pretraining",
            subcategory="checkpoint analytics",
            labels={"run": "sweep {sweep}", "table": "rank correlations"},
        ),
        figure=report(
            "results/figures/analytics/sweeps/{sweep}.png",
            caption="../report/analytics_figure.rst",
            category="3. Pretraining",
            subcategory="checkpoint analytics",
            labels={"run": "sweep {sweep}", "figure": "cheap vs downstream metrics"},
        ),
    log:
        "results/logs/analytics/sweeps/{sweep}.log",
    benchmark:
        "results/benchmarks/analytics/sweeps/{sweep}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["finetune"]["threads"]
    resources:
        gpu=PLAN.gpus("finetune"),
    params:
        model_dirs=PLAN.analytics_model_dirs,
        validation=PLAN.analytics_validation_files,
        settings=PLAN.analytics_settings(),
        device="auto",
    script:
        "../scripts/checkpoint_analytics.py"
