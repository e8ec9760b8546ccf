"""Rule tf_binding_task: the per-base regression dataset with position-grouped splits."""

from dnalm.core.smk import run_script
from dnalm.tasks.tf_binding import build_tf_binding


def main(smk):
    cfg = smk.params.cfg
    fr = cfg["fractions"]
    build_tf_binding(
        smk.output.data.rsplit("/", 1)[0],
        smk.input.sequences,
        scores=smk.input.get("scores"),
        fmt=cfg["format"],
        genome=smk.input.get("genome"),
        fractions=(fr["train"], fr["validation"], fr["test"]),
        seed=cfg["seed"],
        group_distance=cfg["group_distance"],
    )


run_script(snakemake, main)
