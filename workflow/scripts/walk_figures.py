"""Rule walk_figures: overlaid DNA walks and CGR images of each sample's held-out CDS."""

from dnalm.core.smk import run_script
from dnalm.report.walk_plots import sample_figures


def main(smk):
    cfg = smk.params.walks
    sample_figures(
        dict(zip(smk.params.samples, smk.params.test, strict=True)),
        smk.output.walks,
        smk.output.cgr,
        k=cfg["k"],
        points=cfg["points"],
        max_sequences=cfg["max_sequences"],
        seed=cfg["seed"],
    )


run_script(snakemake, main)
