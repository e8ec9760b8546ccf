"""Rule walk_generated_figures: CGR images and a k-mer UMAP of natural, model-generated and
Markov-generated sequences of every causal model."""

from dnalm.core.smk import run_script
from dnalm.report.walk_plots import generated_figures


def main(smk):
    cfg = smk.params.walks
    keys = ("natural", "samples", "markov")  # the input order of the rule's expand()
    files = list(smk.input)
    fastas = {
        model: dict(zip(keys, files[3 * i : 3 * i + 3], strict=True))
        for i, model in enumerate(smk.params.models)
    }
    generated_figures(
        fastas,
        smk.output.cgr,
        smk.output.umap,
        smk.output.umap_tsv,
        k=cfg["k"],
        umap_k=cfg["umap_k"],
        max_sequences=cfg["max_sequences"],
        seed=cfg["seed"],
        umap_settings=smk.params.umap,
    )


run_script(snakemake, main)
