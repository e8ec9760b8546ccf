"""Rule finetune: one pretrained model fine-tuned on one task (dnalm.finetuning.finetune)."""

from dnalm.core.config import tracking_spec
from dnalm.core.smk import run_script
from dnalm.finetuning.finetune import finetune, tokenizer_hash_of


def main(smk):
    settings = dict(smk.params.settings)
    settings.setdefault("threads", smk.threads)
    finetune(
        smk.params.model_dir,
        smk.input.task,
        smk.params.out_dir,
        settings,
        run_name=smk.wildcards.run,
        model_name=smk.params.model,
        task_name=smk.wildcards.ftask,
        # the tokenizer config names for this model, not the folder's own copy (which
        # check_model_tokenizer compares with run.json anyway)
        expected_tokenizer_hash=(
            tokenizer_hash_of(smk.input.tokenizer) if hasattr(smk.input, "tokenizer") else None
        ),
        # a models.external entry, checked against the record rule fetch_external_model wrote
        external=(
            {**smk.params.external, "record": smk.input.provenance} if smk.params.external else None
        ),
        # tracking.backend: the run named as its log file
        tracking=tracking_spec(smk.config, f"finetune/{smk.wildcards.ftask}/{smk.wildcards.run}"),
    )


run_script(snakemake, main)
