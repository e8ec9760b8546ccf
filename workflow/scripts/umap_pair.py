"""Rule umap_before_after: the same model's UMAP before and after fine-tuning."""

from dnalm.probe import plot_umap_pair, read_coords
from dnalm.smk import run_script


def main(smk):
    plot_umap_pair(
        read_coords(smk.input.before),
        read_coords(smk.input.after),
        smk.output[0],
        titles=(
            f"{smk.params.model}: pretrained",
            f"{smk.wildcards.run}: after fine-tuning",
        ),
    )


run_script(snakemake, main)
