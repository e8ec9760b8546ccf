"""Rules embed and embed_layers: pooled embeddings of the probe task's sequences
(dnalm.evaluation.embed); embed_layers also writes the layer-wise file of the layer probe from
the same forward passes."""

import torch

from dnalm.core.config import ProbeConfig
from dnalm.core.smk import run_script
from dnalm.evaluation.embed import embed_table


def main(smk):
    probe, ext = smk.params.probe, dict(smk.params.external)
    settings = ProbeConfig.from_dict(probe, "probe")
    layers_out = getattr(smk.output, "layers", None)  # rule embed_layers
    torch.set_num_threads(int(smk.threads))
    regime = smk.wildcards.eregime
    embed_table(
        smk.params.model_dir,
        smk.input.task,
        smk.output.npz,
        layer=int(ext.get("layer", probe["layer"])),
        pooling=ext.get("pooling", settings.main_pooling),
        batch_size=int(ext.get("batch_size", probe["batch_size"])),
        rc_average=bool(ext.get("rc_average", probe.get("rc_average", False))),
        trust_remote_code=bool(ext.get("trust_remote_code", False)),
        # a models.external entry: pinned, checked against its provenance record
        external=(
            {"entry": ext["entry"], "record": smk.input.provenance} if "entry" in ext else None
        ),
        # a run fine-tuned from an entry with its own code: the folder carries that code
        remote_code=(
            {"entry": ext["finetuned_from"], "record": smk.input.provenance}
            if "finetuned_from" in ext
            else None
        ),
        random_init=regime == "random-init",
        regime=regime,
        meta={"model": smk.wildcards.ename},
        layers=settings.layers,
        poolings=settings.poolings,
        layers_out=layers_out,
    )


run_script(snakemake, main)
