# Scaling sweeps: config["sweeps"] grids are expanded into pretrain.models entries in
# common.smk (PLAN.sweeps); here each sweep's runs are summarised (parameters, tokens, FLOPs,
# test bits/nt), fitted with a power law of compute and drawn against compute.


rule sweep_summary:
    input:
        lambda wc: expand(
            "results/models/{model}/{f}",
            model=[p.model for p in PLAN.sweeps[wc.sweep]],
            f=["run.json", "metrics.json"],
        ),
    output:
        summary=report(
            "results/sweeps/{sweep}/summary.tsv",
            caption="../report/sweep_summary.rst",
            category="3. Pretraining",
            subcategory="scaling sweeps",
            labels={"sweep": "{sweep}", "table": "runs"},
        ),
        fit=report(
            "results/sweeps/{sweep}/fit.tsv",
            caption="../report/sweep_fit.rst",
            category="3. Pretraining",
            subcategory="scaling sweeps",
            labels={"sweep": "{sweep}", "table": "power-law fit"},
        ),
        figure=report(
            "results/figures/sweeps/{sweep}/scaling.png",
            caption="../report/sweep_scaling.rst",
            category="3. Pretraining",
            subcategory="scaling sweeps",
            labels={"sweep": "{sweep}", "figure": "bits/nt vs compute"},
        ),
    log:
        "results/logs/sweeps/{sweep}.log",
    benchmark:
        "results/benchmarks/sweeps/{sweep}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        points=lambda wc: PLAN.sweep_points(wc.sweep),
        model_dirs=lambda wc: {
            p.model: PLAN.run_dir("pretrain", p.model) for p in PLAN.sweeps[wc.sweep]
        },
        fit=lambda wc: PLAN.sweep_fit(wc.sweep),
    script:
        "../scripts/sweep_summary.py"
