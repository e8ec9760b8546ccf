"""Rule pretrain: train one language model (dnalm.training.pretrain). With more than one GPU the
training runs under torchrun (one process per GPU, DDP or FSDP2); with more than one node, one
torchrun per node started by srun inside the SLURM allocation (dnalm.training.distributed)."""

from dnalm.core.config import tracking_spec
from dnalm.core.smk import run_script
from dnalm.training.distributed import launch
from dnalm.training.pretrain import run_pretraining
from dnalm.training.run import PretrainRun, PretrainTrainConfig


def main(smk):
    spec = smk.params.spec
    # the model's settings as the config writes them, checked by the plan (Plan.check); the
    # dataclass adds the schema's defaults
    train = PretrainTrainConfig(**smk.params.train)
    run = PretrainRun(
        corpus_dir=smk.input.corpus,
        out_dir=smk.params.model_dir,
        objective=spec["objective"],
        preset=spec["preset"],
        overrides=spec.get("overrides") or {},
        train=train,
        loss=spec.get("loss") or "ce",  # the model's pretraining loss (training.objectives)
        loss_options=spec.get("loss_options") or {},
        arch=spec.get("arch"),
        strategy=smk.params.strategy,
        gpus=smk.params.gpus,
        nodes=smk.params.nodes,
        cpus=smk.threads,  # per node: pretrain.threads CPUs per GPU x the GPUs
        tracking=tracking_spec(smk.config, f"pretrain/{smk.wildcards.model}"),  # tracking.backend
    )
    if run.several_processes:
        launch(run, log_file=smk.log[0])  # torchrun (rank 0 writes the outputs)
    else:
        run_pretraining(run)


run_script(snakemake, main)
