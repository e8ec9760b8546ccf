"""Rule finetune_calibration: reliability diagrams of a classification task's fine-tuned heads
and baselines (test predictions)."""

from pathlib import Path

from dnalm.core.smk import run_script
from dnalm.finetuning.compare import calibration_of
from dnalm.report.calibration_plots import plot_reliability


def main(smk):
    lines = []
    for metrics in smk.input:
        run_dir = Path(metrics).parent
        calib = calibration_of(run_dir)
        if calib:
            lines.append((run_dir.name, calib))
    plot_reliability(
        {smk.wildcards.ftask: lines},
        smk.output[0],
        title="calibration of the fine-tuned classifiers (test)",
    )


run_script(snakemake, main)
