"""Rule probe: logistic-regression species probe of one model's embeddings."""

from dnalm.core.config import ProbeConfig
from dnalm.core.smk import run_script
from dnalm.evaluation.probe import probe_embeddings
from dnalm.report.probe_plots import plot_confusion


def main(smk):
    probe = ProbeConfig.from_dict(smk.params.probe, "probe")
    m = probe_embeddings(smk.input.npz, smk.output.metrics, cv_folds=int(probe.cv_folds))
    plot_confusion(
        m["confusion_matrix"],
        m["classes"],
        smk.output.confusion,
        title=f"{m['model']} ({m['regime']}): accuracy {m['accuracy']:.2f}",
    )


run_script(snakemake, main)
