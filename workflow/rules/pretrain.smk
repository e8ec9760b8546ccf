# Pretraining: one model per entry of config["pretrain"]["models"] (objective x tokenizer x
# preset). Checkpoints live in results/models/{model}/checkpoints/ (not declared as output,
# so a job killed by a time limit resumes from its last checkpoint when it is rerun).


rule pretrain:
    input:
        corpus=lambda wc: PLAN.model_corpus(wc.model),
    output:
        config="results/models/{model}/config.json",
        weights="results/models/{model}/model.safetensors",
        curves="results/models/{model}/curves.csv",
        metrics="results/models/{model}/metrics.json",
        run="results/models/{model}/run.json",
    log:
        "results/logs/pretrain/{model}.log",
    benchmark:
        "results/benchmarks/pretrain/{model}.tsv"
    conda:
        "../../envs/torch.yaml"
    # pretrain.threads is CPUs per GPU: the job (each node's task) gets threads x gpus CPUs,
    # split over the node's training processes (PLAN.pretrain_threads)
    threads: PLAN.pretrain_threads()
    resources:
        # GPUs per node and nodes from config (>1 GPU: torchrun on one node, nodes=1; >1
        # node: srun + torchrun per node, see PLAN.pretrain_resource); runtime and memory on a cluster come from
        # profiles/slurm (set-resources), growing with each attempt.
        gpu=PLAN.pretrain_resource("gpu"),
        gres=PLAN.pretrain_resource("gres"),
        nodes=PLAN.pretrain_resource("nodes"),
        tasks=PLAN.pretrain_resource("tasks"),
        tasks_per_gpu=PLAN.pretrain_resource("tasks_per_gpu"),
        mpi=PLAN.pretrain_resource("mpi"),
    params:
        spec=lambda wc: PLAN.models[wc.model],
        train=lambda wc: PLAN.pretrain_train_cfg(wc.model),
        gpus=config["pretrain"]["gpus"],
        nodes=config["pretrain"].get("nodes", 1),
        strategy=config["pretrain"].get("strategy", "ddp"),
        model_dir=lambda wc: PLAN.run_dir("pretrain", wc.model),
    script:
        "../scripts/pretrain.py"


# The model card (README.md) and provenance.json of a pretrained model folder: written after
# pretraining from its test metrics (with the count baselines), run record, the samples'
# verified sources and the split files (dnalm.report.cards, dnalm.core.provenance).
rule pretrain_card:
    input:
        unpack(PLAN.pretrain_card_inputs),
    output:
        card="results/models/{model}/README.md",
        provenance="results/models/{model}/provenance.json",
    log:
        "results/logs/pretrain/{model}.card.log",
    benchmark:
        "results/benchmarks/pretrain/{model}.card.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        config=PLAN.config,
        # the split seeds; the training seed is read from run.json (as the run used it)
        seeds=lambda wc: PLAN.split_seeds(PLAN.models[wc.model]["corpus"]),
    script:
        "../scripts/model_card.py"
