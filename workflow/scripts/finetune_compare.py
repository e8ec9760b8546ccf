"""Rule finetune_compare: one comparison table and the figures of one task."""

from pathlib import Path

from dnalm.core.io import atomic_write
from dnalm.core.smk import run_script
from dnalm.finetuning.compare import kind_of, name_suite_metric, summarise_runs
from dnalm.finetuning.tables import comparison_table
from dnalm.report import finetune_plots


def main(smk):
    table = comparison_table(list(smk.input))
    run_dirs = {Path(m).parent.name: Path(m).parent for m in smk.input}
    suite = smk.params.suite
    table = summarise_runs(
        table,
        run_dirs,
        kind_of(table),
        n_boot=smk.params.n_boot,
        seed=smk.params.seed,
        extra_metrics=[suite["metric"]] if suite else [],
    )
    table = name_suite_metric(table, suite)
    with atomic_write(smk.output.table) as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.6g")
    finetune_plots.plot_performance(smk.output.table, smk.output.performance)
    finetune_plots.plot_finetune_time(smk.output.table, smk.output.time)
    finetune_plots.plot_finetune_curves(
        run_dirs, smk.output.curves, title=f"fine-tuning on {smk.wildcards.ftask}"
    )


run_script(snakemake, main)
