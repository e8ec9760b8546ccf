"""Rule finetune_tracks: predicted versus true per-base tracks of a few test windows."""

from pathlib import Path

from dnalm.core.artifacts import PREDICTIONS_NPZ
from dnalm.core.smk import run_script
from dnalm.report import finetune_plots


def main(smk):
    npz = {}
    for m in smk.input:
        f = Path(m).parent / PREDICTIONS_NPZ
        if f.is_file():
            npz[f.parent.name] = f
    finetune_plots.plot_tracks(npz, smk.output[0], n_windows=int(smk.params.n_windows))


run_script(snakemake, main)
