"""Rule corpus: tokenized train/validation/test windows of one tokenizer
(dnalm.tokenization.corpus)."""

from dnalm.core.smk import run_script
from dnalm.tokenization.corpus import SHARD_TOKENS, build_corpus


def main(smk):
    cfg = smk.params.cfg
    build_corpus(
        smk.input.tokenizer,
        {split: list(smk.params.files[split]) for split in ("train", "validation", "test")},
        smk.output[0],
        block_size=cfg["block_size"],
        packing=cfg["packing"],
        rc_augment=cfg["rc_augment"],
        min_length=cfg["min_length"],
        seed=cfg["seed"],
        tokenizer_name=smk.wildcards.tok,
        shard_tokens=cfg.get("shard_tokens", SHARD_TOKENS),
    )


run_script(snakemake, main)
