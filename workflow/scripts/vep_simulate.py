"""Rule vep_simulate: coding SNVs of three classes in one sample's held-out CDS, with the
count-model baseline scores."""

from dnalm.core.smk import run_script
from dnalm.evaluation.variants import simulate_cds_variants


def main(smk):
    s = smk.params.settings
    simulate_cds_variants(
        list(smk.input.test),
        list(smk.input.train),
        smk.input.cds_table,
        smk.output.vcf,
        smk.output.table,
        n_per_class=int(s["n_per_class"]),
        seed=int(s["seed"]),
        markov_order=int(s["markov_order"]),
    )


run_script(snakemake, main)
