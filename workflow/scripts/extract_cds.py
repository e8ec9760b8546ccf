"""Rule extract_cds: coding sequences of one sample with a per-CDS QC table (dnalm.genome.cds)."""

from dnalm.core.smk import run_script
from dnalm.genome.cds import DropPolicy, run_cds


def main(smk):
    s = smk.params.sample
    cfg = dict(smk.params.policy)
    allow_empty = bool(cfg.pop("allow_empty", False))
    max_drop_fraction = cfg.pop("max_drop_fraction", None)
    run_cds(
        s.sample,
        s.format,
        smk.input.primary,
        smk.output.fasta,
        smk.output.tsv,
        annotation=smk.input.annotation or None,
        genetic_code=s.genetic_code,
        policy=DropPolicy.from_config(cfg),
        allow_empty=allow_empty,
        max_drop_fraction=max_drop_fraction,
        annotate=s.annotate,
        annotate_mode=s.annotate_mode,
    )


run_script(snakemake, main)
