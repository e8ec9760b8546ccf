# Attribution and motifs: ISM, gradient x input and integrated gradients of fine-tuned task
# models and the one-hot CNN on test sequences (interpret.runs), the bound-vs-unbound AUROC
# of per-base tasks and motifs from attributions of classification tasks, with figures.


rule interpret:
    input:
        unpack(PLAN.interpret_run_inputs),
    output:
        npz="results/interpret/{itask}/{irun}/attributions.npz",
        summary="results/interpret/{itask}/{irun}/summary.tsv",
    log:
        "results/logs/interpret/{itask}/{irun}.log",
    benchmark:
        "results/benchmarks/interpret/{itask}/{irun}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: PLAN.interpret.get("threads", 2)
    resources:
        gpu=PLAN.gpus("interpret"),
    params:
        settings=PLAN.interpret_settings(),
        run_dir=lambda wc: PLAN.run_dir("finetune", wc.irun, wc.itask),
        out_dir=lambda wc: f"results/interpret/{wc.itask}/{wc.irun}",
    script:
        "../scripts/interpret_run.py"


rule interpret_tracks:
    input:
        "results/interpret/{itask}/{irun}/attributions.npz",
    output:
        report(
            "results/figures/interpret/{itask}/{irun}/tracks.png",
            caption="../report/interpret_tracks.rst",
            category="8. Attribution",
            subcategory="{itask}",
            labels={
                "task": "{itask}",
                "run": "{irun}",
                "figure": "attribution tracks",
            },
        ),
    log:
        "results/logs/interpret/{itask}/{irun}_tracks.log",
    benchmark:
        "results/benchmarks/interpret/{itask}/{irun}_tracks.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        n_windows=PLAN.interpret.get("n_figure_windows", 3),
    script:
        "../scripts/interpret_tracks.py"


rule interpret_summary:
    input:
        PLAN.interpret_summaries,
    output:
        table=report(
            "results/interpret/{itask}/summary.tsv",
            caption="../report/interpret_table.rst",
            category="8. Attribution",
            subcategory="{itask}",
            labels={"task": "{itask}", "table": "attribution summary"},
        ),
        figure=report(
            "results/figures/interpret/{itask}/summary.png",
            caption="../report/interpret_summary.rst",
            category="8. Attribution",
            subcategory="{itask}",
            labels={"task": "{itask}", "figure": "attribution summary"},
        ),
    log:
        "results/logs/interpret/{itask}/summary.log",
    benchmark:
        "results/benchmarks/interpret/{itask}/summary.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/interpret_summary.py"
