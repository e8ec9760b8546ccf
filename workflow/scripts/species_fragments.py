"""Rule species_fragments: in-frame CDS fragments of held-out CDS per species (dnalm.tasks)."""

from dnalm.core.smk import run_script
from dnalm.tasks.species import build_species_fragments


def main(smk):
    cfg = dict(smk.params.cfg)
    cfg.pop("enabled", None)
    samples = [
        {**s, "validation_fasta": v, "test_fasta": t}
        for s, v, t in zip(
            smk.params.samples,
            smk.params.files["validation"],
            smk.params.files["test"],
            strict=True,
        )
    ]
    out_dir = smk.output.data.rsplit("/", 1)[0]
    build_species_fragments(samples, out_dir, **cfg)


run_script(snakemake, main)
