# Embeddings, probes and UMAPs of the probe task (species fragments): pretrained models, the
# same architectures with random weights, fine-tuned backbones and external Hugging Face
# models, against a k-mer frequency probe. The logistic-regression probe (rules probe,
# probe_kmer) always runs; the other kinds of probe.kinds (rules probe_kind, probe_kmer_kind)
# write under results/probe/metrics/{pkind}/. The layer probe (probe.layers, probe.pooling,
# probe.layer_models): rule embed_layers embeds a layer-probed model in place of rule embed,
# writing the layer-wise file from the same forward passes; rules probe_layers and
# probe_layer_table probe every layer and pooling and draw a curve per model.


rule embed:
    input:
        unpack(PLAN.embed_inputs),
    output:
        npz="results/probe/embeddings/{eregime}/{ename}.npz",
        meta="results/probe/embeddings/{eregime}/{ename}.json",
    log:
        "results/logs/probe/embed/{eregime}/{ename}.log",
    benchmark:
        "results/benchmarks/probe/embed/{eregime}/{ename}.tsv"
    wildcard_constraints:
        eregime="pretrained|random-init|fine-tuned|external",  # dnatext: rule dnatext_embed
    conda:
        "../../envs/torch.yaml"
    threads: config["finetune"]["threads"]
    resources:
        gpu=PLAN.gpus("finetune"),
    params:
        model_dir=PLAN.embed_model_dir,
        external=lambda wc: PLAN.embed_external(wc.eregime, wc.ename),
        probe=PLAN.probe,
    script:
        "../scripts/embed_model.py"


if PLAN.layer_probes():

    ruleorder: embed_layers > embed

    rule embed_layers:
        input:
            unpack(PLAN.embed_inputs),
        output:
            npz="results/probe/embeddings/{eregime}/{ename}.npz",
            meta="results/probe/embeddings/{eregime}/{ename}.json",
            layers="results/probe/layers/embeddings/{eregime}/{ename}.npz",
            layers_meta="results/probe/layers/embeddings/{eregime}/{ename}.json",
        log:
            "results/logs/probe/embed/{eregime}/{ename}.log",
        benchmark:
            "results/benchmarks/probe/embed/{eregime}/{ename}.tsv"
        wildcard_constraints:
            eregime=PLAN.layer_probe_constraints()["eregime"],
            ename=PLAN.layer_probe_constraints()["ename"],
        conda:
            "../../envs/torch.yaml"
        threads: config["finetune"]["threads"]
        resources:
            gpu=PLAN.gpus("finetune"),
        params:
            model_dir=PLAN.embed_model_dir,
            external=lambda wc: PLAN.embed_external(wc.eregime, wc.ename),
            probe=PLAN.probe,
        script:
            "../scripts/embed_model.py"

    rule probe_layers:
        input:
            npz="results/probe/layers/embeddings/{eregime}/{ename}.npz",
            meta="results/probe/layers/embeddings/{eregime}/{ename}.json",
        output:
            metrics="results/probe/layers/metrics/{eregime}/{ename}.json",
        log:
            "results/logs/probe/layers/{eregime}/{ename}.log",
        benchmark:
            "results/benchmarks/probe/layers/{eregime}/{ename}.tsv"
        conda:
            "../../envs/torch.yaml"
        params:
            probe=PLAN.probe,
        script:
            "../scripts/probe_layers.py"

    rule probe_layer_table:
        input:
            layers=PLAN.layer_metric_files(),
            kmer=f"results/probe/metrics/kmer-baseline/kmer{PLAN.probe['kmer_k']}.json",
        output:
            table=report(
                "results/probe/layer_table.tsv",
                caption="../report/probe_layer_table.rst",
                category="5. Species probe",
                labels={"table": "layer probe"},
            ),
            figure=report(
                "results/figures/probe/layer_probe.png",
                caption="../report/probe_layer_curves.rst",
                category="5. Species probe",
                labels={"figure": "layer probe"},
            ),
        log:
            "results/logs/probe/layer_table.log",
        benchmark:
            "results/benchmarks/probe/layer_table.tsv"
        conda:
            "../../envs/torch.yaml"
        script:
            "../scripts/probe_layer_table.py"


rule probe:
    input:
        npz="results/probe/embeddings/{eregime}/{ename}.npz",
        meta="results/probe/embeddings/{eregime}/{ename}.json",
    output:
        metrics="results/probe/metrics/{eregime}/{ename}.json",
        confusion=report(
            "results/figures/probe/confusion/{eregime}/{ename}.png",
            caption="../report/probe_confusion.rst",
            category="5. Species probe",
            subcategory="confusion matrices",
            labels={"model": "{ename}", "regime": "{eregime}"},
        ),
    log:
        "results/logs/probe/probe/{eregime}/{ename}.log",
    benchmark:
        "results/benchmarks/probe/probe/{eregime}/{ename}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        probe=PLAN.probe,
    script:
        "../scripts/probe_model.py"


rule probe_kmer:
    input:
        task=f"results/tasks/{PLAN.probe['task']}/data.tsv",
    output:
        metrics="results/probe/metrics/kmer-baseline/kmer{k}.json",
    log:
        "results/logs/probe/kmer{k}.log",
    benchmark:
        "results/benchmarks/probe/kmer{k}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        probe=PLAN.probe,
    script:
        "../scripts/probe_kmer.py"


rule probe_kind:
    input:
        npz="results/probe/embeddings/{eregime}/{ename}.npz",
        meta="results/probe/embeddings/{eregime}/{ename}.json",
    output:
        metrics="results/probe/metrics/{pkind}/{eregime}/{ename}.json",
    log:
        "results/logs/probe/probe/{pkind}/{eregime}/{ename}.log",
    benchmark:
        "results/benchmarks/probe/probe/{pkind}/{eregime}/{ename}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        probe=PLAN.probe,
    script:
        "../scripts/probe_model.py"


rule probe_kmer_kind:
    input:
        task=f"results/tasks/{PLAN.probe['task']}/data.tsv",
    output:
        metrics="results/probe/metrics/{pkind}/kmer-baseline/kmer{k}.json",
    log:
        "results/logs/probe/{pkind}/kmer{k}.log",
    benchmark:
        "results/benchmarks/probe/{pkind}/kmer{k}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        probe=PLAN.probe,
    script:
        "../scripts/probe_kmer.py"


rule probe_table:
    input:
        metrics=PLAN.probe_metric_files(),
        layers=PLAN.layer_metric_files(),
    output:
        table=report(
            "results/probe/probe_table.tsv",
            caption="../report/probe_table.rst",
            category="5. Species probe",
            labels={"table": "probe accuracy"},
        ),
        figure=report(
            "results/figures/probe/probe_accuracy.png",
            caption="../report/probe_accuracy.rst",
            category="5. Species probe",
            labels={"figure": "probe accuracy"},
        ),
        calibration=report(
            "results/figures/probe/calibration.png",
            caption="../report/probe_calibration.rst",
            category="5. Species probe",
            labels={"figure": "probe calibration"},
        ),
    log:
        "results/logs/probe/table.log",
    benchmark:
        "results/benchmarks/probe/table.tsv"
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/probe_table.py"


# One job draws every UMAP of the run: umap-learn's import and numba's compilation are most of
# a small map's CPU, so they are paid once (the maps are those of one job per map, bit for bit).
if PLAN.embeddings():

    rule umap:
        input:
            npz=PLAN.umap_files("npz"),
        output:
            coords=PLAN.umap_files("coords"),
            figures=[
                report(
                    png,
                    caption="../report/probe_umap.rst",
                    category="5. Species probe",
                    subcategory="UMAP",
                    labels={"model": name, "regime": regime},
                )
                for png, (regime, name) in zip(
                    PLAN.umap_files("figures"), PLAN.embeddings()
                )
            ],
        log:
            "results/logs/probe/umap.log",
        benchmark:
            "results/benchmarks/probe/umap.tsv"
        conda:
            "../../envs/torch.yaml"
        params:
            umap=PLAN.probe["umap"],
            maps=PLAN.embeddings(),
        script:
            "../scripts/umap_plot.py"


rule umap_before_after:
    input:
        before=lambda wc: PLAN.umap_before(wc.run),
        after="results/probe/umap/fine-tuned/{run}.tsv",
    output:
        report(
            "results/figures/probe/umap_before_after/{run}.png",
            caption="../report/probe_umap_pair.rst",
            category="5. Species probe",
            subcategory="UMAP",
            labels={"model": "{run}", "regime": "before / after fine-tuning"},
        ),
    log:
        "results/logs/probe/umap_before_after/{run}.log",
    benchmark:
        "results/benchmarks/probe/umap_before_after/{run}.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        model=lambda wc: PLAN.runs[wc.run]["model"],
    script:
        "../scripts/umap_pair.py"
