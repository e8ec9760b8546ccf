# Fine-tuning and baselines: every run under finetune.runs on each of its tasks, the one-hot
# CNN and the k-mer baselines on the same splits, one comparison table and figures per task.
# Checkpoints live in results/finetune/{ftask}/{run}/checkpoints/, the one-hot CNN's included
# (not declared: a killed job resumes from them when rerun with the same settings).


rule finetune:
    input:
        unpack(PLAN.finetune_inputs),
    output:
        metrics="results/finetune/{ftask}/{run}/metrics.json",
        curves="results/finetune/{ftask}/{run}/curves.csv",
        # the fine-tuned model folder, written whole or not at all (plus its tokenizer
        # files); rule finetune_card adds README.md and provenance.json to it
        config="results/finetune/{ftask}/{run}/model/config.json",
        weights="results/finetune/{ftask}/{run}/model/model.safetensors",
        head="results/finetune/{ftask}/{run}/model/head.safetensors",
        record="results/finetune/{ftask}/{run}/model/finetune.json",
    log:
        "results/logs/finetune/{ftask}/{run}.log",
    benchmark:
        "results/benchmarks/finetune/{ftask}/{run}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["finetune"]["threads"]
    resources:
        gpu=PLAN.gpus("finetune"),
    params:
        settings=lambda wc: PLAN.finetune_settings(wc.run, wc.ftask),
        model=lambda wc: PLAN.runs[wc.run]["model"],
        model_dir=lambda wc: PLAN.run_dir("pretrain", PLAN.runs[wc.run]["model"]),
        external=lambda wc: PLAN.finetune_external(wc.run),
        out_dir=lambda wc: PLAN.run_dir("finetune", wc.run, wc.ftask),
    script:
        "../scripts/finetune_run.py"


# The model card (README.md) and provenance.json of a fine-tuned (or merged-LoRA) model
# folder: written once the task's comparison table gives the CIs and the strongest baseline
# (dnalm.report.cards, dnalm.core.provenance).
rule finetune_card:
    input:
        unpack(PLAN.finetune_card_inputs),
    output:
        card="results/finetune/{ftask}/{run}/model/README.md",
        provenance="results/finetune/{ftask}/{run}/model/provenance.json",
    log:
        "results/logs/finetune/{ftask}/{run}.card.log",
    benchmark:
        "results/benchmarks/finetune/{ftask}/{run}.card.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        config=PLAN.config,
        base_model=lambda wc: PLAN.finetune_base_model(wc.run),
        # the fine-tuning seed is read from metrics.json (as the run used it)
        seeds=lambda wc: {
            **PLAN.split_seeds(PLAN.finetune_corpus(wc.run)),
            "bootstrap": config["finetune"]["bootstrap"]["seed"],
        },
    script:
        "../scripts/model_card.py"


rule baseline_cnn:
    input:
        task="results/tasks/{ftask}/data.tsv",
    output:
        metrics="results/finetune/{ftask}/{cnn}/metrics.json",
        curves="results/finetune/{ftask}/{cnn}/curves.csv",
    log:
        "results/logs/finetune/{ftask}/{cnn}.log",
    benchmark:
        "results/benchmarks/finetune/{ftask}/{cnn}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["finetune"]["threads"]
    resources:
        gpu=PLAN.gpus("cnn"),
    params:
        settings=lambda wc: PLAN.cnn_settings(wc.ftask, wc.cnn),
    script:
        "../scripts/baseline_cnn.py"


rule baseline_kmer:
    input:
        task="results/tasks/{ftask}/data.tsv",
    output:
        metrics="results/finetune/{ftask}/kmer{k}/metrics.json",
    log:
        "results/logs/finetune/{ftask}/kmer{k}.log",
    benchmark:
        "results/benchmarks/finetune/{ftask}/kmer{k}.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/baseline_kmer.py"


rule finetune_compare:
    input:
        PLAN.finetune_results,
    output:
        table=report(
            "results/finetune/{ftask}/comparison.tsv",
            caption="../report/finetune_table.rst",
            category="4. Fine-tuning",
            subcategory="{ftask}",
            labels={"task": "{ftask}", "table": "comparison"},
        ),
        performance=report(
            "results/figures/finetune/{ftask}/performance.png",
            caption="../report/finetune_performance.rst",
            category="4. Fine-tuning",
            subcategory="{ftask}",
            labels={"task": "{ftask}", "figure": "performance"},
        ),
        time=report(
            "results/figures/finetune/{ftask}/time.png",
            caption="../report/finetune_time.rst",
            category="4. Fine-tuning",
            subcategory="{ftask}",
            labels={"task": "{ftask}", "figure": "time"},
        ),
        curves=report(
            "results/figures/finetune/{ftask}/curves.png",
            caption="../report/finetune_curves.rst",
            category="4. Fine-tuning",
            subcategory="{ftask}",
            labels={"task": "{ftask}", "figure": "training curves"},
        ),
    log:
        "results/logs/finetune/{ftask}/compare.log",
    benchmark:
        "results/benchmarks/finetune/{ftask}/compare.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        n_boot=config["finetune"]["bootstrap"]["n_boot"],
        seed=config["finetune"]["bootstrap"]["seed"],
        suite=lambda wc: PLAN.suite_metric(wc.ftask),
    script:
        "../scripts/finetune_compare.py"


rule finetune_calibration:
    input:
        PLAN.finetune_results,
    output:
        report(
            "results/figures/finetune/{ftask}/calibration.png",
            caption="../report/finetune_calibration.rst",
            category="4. Fine-tuning",
            subcategory="{ftask}",
            labels={"task": "{ftask}", "figure": "calibration"},
        ),
    log:
        "results/logs/finetune/{ftask}/calibration.log",
    benchmark:
        "results/benchmarks/finetune/{ftask}/calibration.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/finetune_calibration.py"


rule finetune_tracks:
    input:
        PLAN.finetune_results,
    output:
        report(
            "results/figures/finetune/{ftask}/tracks.png",
            caption="../report/finetune_tracks.rst",
            category="4. Fine-tuning",
            subcategory="{ftask}",
            labels={"task": "{ftask}", "figure": "per-base tracks"},
        ),
    log:
        "results/logs/finetune/{ftask}/tracks.log",
    benchmark:
        "results/benchmarks/finetune/{ftask}/tracks.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        n_windows=4,
    script:
        "../scripts/finetune_tracks.py"


# One table and one figure per benchmark suite (rows: models and published numbers;
# columns: the suite's tasks), after the comparison tables of its tasks.
rule suite_table:
    input:
        PLAN.suite_table_inputs,
    output:
        table=report(
            "results/suites/{suite}/table.tsv",
            caption="../report/suite_table.rst",
            category="4. Fine-tuning",
            subcategory="suite {suite}",
            labels={"suite": "{suite}", "table": "suite table"},
        ),
        figure=report(
            "results/figures/suites/{suite}/table.png",
            caption="../report/suite_figure.rst",
            category="4. Fine-tuning",
            subcategory="suite {suite}",
            labels={"suite": "{suite}", "figure": "suite table"},
        ),
    log:
        "results/logs/suites/{suite}/table.log",
    benchmark:
        "results/benchmarks/suites/{suite}/table.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        published=lambda wc: PLAN.suite_published(wc.suite),
    script:
        "../scripts/suite_table.py"
