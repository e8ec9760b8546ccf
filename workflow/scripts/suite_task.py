"""Rule suite_task: one task of a benchmark suite (Genomic Benchmarks, NT downstream, GUE, a
CSV folder) as a sequence classification task (dnalm.tasks.suites)."""

from pathlib import Path

from dnalm.core.smk import run_script
from dnalm.tasks.suites import build_suite_task


def main(smk):
    spec = smk.params.spec
    build_suite_task(Path(smk.output.data).parent, spec, genomes=spec["genomes"])


run_script(snakemake, main)
