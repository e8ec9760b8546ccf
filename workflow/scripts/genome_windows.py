"""Rule genome_windows: one sample's genome (or annotated regions) cut into train/validation/
test windows for a genome/regions corpus (dnalm.genome.windows)."""

from dnalm.core.smk import run_script
from dnalm.genome.regions import read_features
from dnalm.genome.windows import cut_windows, load_exclusions


def main(smk):
    spec = smk.params.spec
    path = getattr(smk.input, "features", None)
    features = read_features(path) if path else None
    tasks = {t: (smk.input[f"task_{t}"], inclusive) for t, inclusive in smk.params.tasks.items()}
    exclude = load_exclusions(tasks, list(smk.input.beds))
    cut_windows(
        smk.wildcards.sample,
        smk.input.genome,
        {
            k: smk.output[k]
            for k in ("train", "validation", "test", "summary", "contigs", "overlaps")
        },
        spec,
        smk.params.fractions,
        corpus=smk.wildcards.wcorpus,
        features=features,
        exclude=exclude,
    )


run_script(snakemake, main)
