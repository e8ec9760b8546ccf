"""Rule vep_summary: the AUROC table of every model and baseline, and its figure."""

from dnalm.core.io import atomic_write
from dnalm.core.smk import run_script
from dnalm.evaluation.variants import auroc_table
from dnalm.report.vep_plots import plot_vep_auroc


def main(smk):
    table = auroc_table(
        smk.input.simulated, dict(zip(smk.params.models, smk.input.scored, strict=True))
    )
    with atomic_write(smk.output.table) as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.4f", na_rep="NA")
    plot_vep_auroc(smk.output.table, smk.output.figure)


run_script(snakemake, main)
