"""Rule extract_cds: coding sequences of one sample with a per-CDS QC table (dnalm.genome.cds);
under ``splits.method: identity`` also the sample's train/validation/test split
(dnalm.genome.splits, logged to the split log as rule split_cds would)."""

from dnalm.core.smk import run_script, step_log
from dnalm.genome.cds import DropPolicy, run_cds
from dnalm.genome.splits import SPLITS, split_sample


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
    split = smk.params.split
    if split:  # splits.method identity (the plan's split_with_cds)
        with step_log(smk.log.splits):
            split_sample(
                s.sample,
                smk.output.fasta,
                {name: smk.output[name] for name in SPLITS},
                smk.output.assignment,
                seed=split["seed"],
                fractions=split["fractions"],
                allow_empty=split["allow_empty"],
            )


run_script(snakemake, main)
