"""Rule split_leakage: best identity of each test CDS to any train CDS (MMseqs2 search), the
per-CDS table, the summary and the histogram (dnalm.genome.homology, dnalm.report)."""

from dnalm.core.smk import run_script
from dnalm.genome.homology import leakage_report
from dnalm.report.splits_plots import plot_leakage


def main(smk):
    samples = list(smk.params.samples)
    table, _ = leakage_report(
        dict(zip(samples, smk.params.files["train"], strict=True)),
        dict(zip(samples, smk.params.files["test"], strict=True)),
        smk.output.table,
        smk.output.summary,
        smk.params.mmseqs,
        cds_tables=dict(zip(samples, smk.params.tsv, strict=True)),
        threads=smk.threads,
    )
    plot_leakage(
        table,
        smk.output.png,
        method=smk.params.method,
        level=smk.params.mmseqs["level"],
        min_identity=smk.params.mmseqs["min_identity"],
        coverage=smk.params.mmseqs["coverage"],
    )


run_script(snakemake, main)
