"""Rule dnatext_corpus: the paired DNA-text corpus (dnalm.multimodal.corpus)."""

from pathlib import Path

from dnalm.core.smk import run_script
from dnalm.multimodal.corpus import build_pairs, write_corpus


def main(smk):
    samples = list(smk.params.samples)
    fastas = {
        s: {sp: smk.input[f"{s}__{sp}"] for sp in ("train", "validation", "test")} for s in samples
    }
    pairs = build_pairs(
        samples,
        [smk.input[f"{s}__table"] for s in samples],
        fastas,
        dict(smk.params.species),
        smk.params.max_dna_nt,
    )
    write_corpus(pairs, Path(smk.output.pairs).parent)


run_script(snakemake, main)
