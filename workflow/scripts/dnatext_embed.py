"""Rule dnatext_embed: the probe task's fragments embedded with one dnatext-stage model
(DNA only; dnalm.multimodal.probe_embed), in the embeddings format the probe rules read."""

from pathlib import Path

import torch

from dnalm.core.config import ProbeConfig
from dnalm.core.smk import run_script
from dnalm.multimodal.probe_embed import embed_dnatext_folder


def main(smk):
    probe = smk.params.probe
    torch.set_num_threads(int(smk.threads))
    name = smk.wildcards.ename
    embed_dnatext_folder(
        Path(smk.input.models) / name,
        smk.input.task,
        smk.output.npz,
        layer=int(probe["layer"]),
        pooling=ProbeConfig.from_dict(probe, "probe").main_pooling,
        batch_size=int(probe["batch_size"]),
        rc_average=bool(probe.get("rc_average", False)),
        name=name,
        device=smk.params.device,
    )


run_script(snakemake, main)
