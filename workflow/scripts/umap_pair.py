"""Rule umap_before_after: the same model's UMAP before and after fine-tuning."""

from dnalm.core.smk import run_script
from dnalm.evaluation.probe import read_coords
from dnalm.report.probe_plots import plot_umap_pair


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
