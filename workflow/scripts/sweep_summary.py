"""Rule sweep_summary: one scaling sweep's summary table, power-law fit and compute figure
(dnalm.evaluation.scaling, dnalm.report.scaling_plots)."""

import logging

from dnalm.core.smk import run_script
from dnalm.evaluation.scaling import sweep_summary, write_summary
from dnalm.report.scaling_plots import plot_scaling

log = logging.getLogger("dnalm.sweep")


def main(smk):
    fit_cfg = dict(smk.params.fit)
    points = list(smk.params.points)
    df, fit = sweep_summary(points, smk.params.model_dirs, fit_cfg["form"], fit_cfg["points"])
    write_summary(df, fit, fit_cfg["points"], smk.output.summary, smk.output.fit)
    log.info("sweep %s: %d runs; %s", smk.wildcards.sweep, len(df), fit.formula())
    for name, value in fit.params.items():
        log.info("  %s = %.6g +- %.3g", name, value, fit.stderr[name])
    plot_scaling(
        df,
        smk.output.figure,
        fit.formula(),
        fit.predict if fit.ok else None,
        title=f"sweep {smk.wildcards.sweep}",
    )


run_script(snakemake, main)
