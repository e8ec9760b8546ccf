"""Rule probe_layers: the layer probe of one model (dnalm.evaluation.layer_probe), a
logistic-regression probe on every layer and pooling of its layer-wise embeddings file."""

from dnalm.core.config import ProbeConfig
from dnalm.core.smk import run_script
from dnalm.evaluation.layer_probe import probe_layers


def main(smk):
    probe = ProbeConfig.from_dict(smk.params.probe, "probe")
    probe_layers(smk.input.npz, smk.output.metrics, cv_folds=int(probe.cv_folds))


run_script(snakemake, main)
