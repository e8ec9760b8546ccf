"""Rule window_leakage: the windows summary and the leakage table of one genome/regions
corpus (dnalm.genome.windows)."""

import pandas as pd

from dnalm.core.io import atomic_write
from dnalm.core.smk import run_script
from dnalm.genome.windows import leakage_table, load_exclusions


def main(smk):
    spec = smk.params.spec
    tasks = {t: (smk.input[f"task_{t}"], inclusive) for t, inclusive in smk.params.tasks.items()}
    sources = load_exclusions(tasks, list(smk.input.beds))
    read = lambda files: pd.concat([pd.read_csv(f, sep="\t") for f in files])  # noqa: E731
    excluded = [s for s in sources if spec["exclude_tasks"] or not s.startswith("task:")]
    table = leakage_table(
        smk.wildcards.wcorpus,
        read(smk.input.contigs),
        read(smk.input.overlaps).astype({"id": str}),
        sources,
        excluded,
    )
    with atomic_write(smk.output.leakage) as fh:
        table.to_csv(fh, sep="\t", index=False)
    with atomic_write(smk.output.summary) as fh:
        read(smk.input.summary).to_csv(fh, sep="\t", index=False)


run_script(snakemake, main)
