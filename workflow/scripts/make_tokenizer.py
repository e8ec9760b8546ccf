"""Rule tokenizer: build a tokenizer folder (BPE is trained on the training split)."""

from dnalm.core.smk import run_script
from dnalm.tokenization.build import make_tokenizer


def main(smk):
    spec = dict(smk.params.spec)
    tok = make_tokenizer(spec, smk.output[0], train_fastas=list(smk.params.train) or None)
    print(f"{smk.wildcards.tok}: {spec['type']} tokenizer, vocabulary {tok.vocab_size}")


run_script(snakemake, main)
