"""Rule umap: the 2-D UMAP of every embedded model's test embeddings, coloured by species,
all in this one job (umap-learn and numba's compilation load once, not once per map)."""

from dnalm.core.config import UMAPConfig
from dnalm.core.smk import run_script
from dnalm.evaluation.embeddings import load_embeddings
from dnalm.evaluation.probe import umaps_from_npz
from dnalm.report.probe_plots import plot_umap


def main(smk):
    u = UMAPConfig.from_dict(smk.params.umap, "probe.umap")
    maps = umaps_from_npz(
        list(smk.input.npz),
        list(smk.output.coords),
        max_points=u.max_points,
        seed=int(u.seed),
        n_neighbors=int(u.n_neighbors),
        metric=u.metric,
        min_dist=float(u.min_dist),
    )
    for (regime, name), npz, coords, png in zip(
        smk.params.maps, smk.input.npz, maps, smk.output.figures, strict=True
    ):
        meta = load_embeddings(npz).meta
        plot_umap(coords, png, f"{name} ({meta.get('regime', regime)})")


run_script(snakemake, main)
