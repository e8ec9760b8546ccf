"""Rule interpret_tracks: attribution logos of a few explained windows of one run."""

from dnalm.core.smk import run_script
from dnalm.report.attribution_plots import plot_attribution_tracks


def main(smk):
    plot_attribution_tracks(
        smk.input[0],
        smk.output[0],
        n_windows=int(smk.params.n_windows),
        title=f"{smk.wildcards.irun} on {smk.wildcards.itask}",
    )


run_script(snakemake, main)
