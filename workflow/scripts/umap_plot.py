"""Rule umap: 2-D UMAP of one model's test embeddings, coloured by species."""

from dnalm.core.config import UMAPConfig
from dnalm.core.smk import run_script
from dnalm.evaluation.embeddings import load_embeddings
from dnalm.evaluation.probe import umap_from_npz
from dnalm.report.probe_plots import plot_umap


def main(smk):
    u = UMAPConfig.from_dict(smk.params.umap, "probe.umap")
    coords = umap_from_npz(
        smk.input.npz,
        smk.output.coords,
        max_points=u.max_points,
        seed=int(u.seed),
        n_neighbors=int(u.n_neighbors),
        metric=u.metric,
        min_dist=float(u.min_dist),
    )
    meta = load_embeddings(smk.input.npz).meta
    title = f"{smk.wildcards.ename} ({meta.get('regime', smk.wildcards.eregime)})"
    plot_umap(coords, smk.output.figure, title)


run_script(snakemake, main)
