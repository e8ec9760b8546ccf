"""Rule suite_audit: the leakage audit of one benchmark suite (dnalm.tasks.audit)."""

from dnalm.core.smk import run_script
from dnalm.tasks.audit import audit_suite


def main(smk):
    spec = smk.params.spec
    audit_suite(
        smk.wildcards.suite,
        spec["tasks"],
        spec["references"],
        smk.output.audit,
        smk.output.per_item,
        k=spec["k"],
        threads=smk.threads,
    )


run_script(snakemake, main)
