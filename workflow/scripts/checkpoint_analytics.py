"""Rules analytics_run and analytics_sweep: the metrics of a run's kept checkpoints (or of a
sweep's runs), their rank correlations and the figure (dnalm.evaluation.analytics)."""

import torch

from dnalm.core.device import select_device
from dnalm.core.smk import run_script
from dnalm.evaluation.analytics import (
    checkpoint_points,
    correlations,
    evaluate_points,
    fixed_sets,
    sweep_points,
    write_table,
)
from dnalm.report.analytics_plots import plot_analytics


def main(smk):
    torch.set_num_threads(int(smk.threads))
    s = smk.params.settings
    inputs = dict(smk.input)
    sweep = dict(smk.wildcards).get("sweep")
    dirs = dict(smk.params.model_dirs)
    if sweep is not None:
        name, points = f"sweep {sweep}", sweep_points(dirs)
    else:
        ((name, folder),) = dirs.items()
        points = checkpoint_points(folder, int(s["max_checkpoints"]))
    sets = fixed_sets(
        list(smk.params.validation),
        s,
        probe_table=inputs.get("probe_task"),
        simulated=inputs.get("simulated"),
        vcf=inputs.get("vcf"),
        fasta=inputs.get("fasta"),
    )
    table = evaluate_points(name, points, sets, s, str(select_device(smk.params.device)))
    corr = correlations(table, int(s["n_boot"]), int(s["seed"]))
    write_table(table, smk.output.table)
    write_table(corr, smk.output.correlations)
    plot_analytics(table, corr, smk.output.figure, title=f"checkpoint analytics: {name}")


run_script(snakemake, main)
