"""Rules probe and probe_kind: a species probe (logistic regression, or the wildcard's kind) of
one model's embeddings; the logistic-regression probe also draws its confusion matrix."""

from dnalm.core.config import ProbeConfig
from dnalm.core.smk import run_script
from dnalm.evaluation.probe import probe_embeddings
from dnalm.report.probe_plots import plot_confusion


def main(smk):
    probe = ProbeConfig.from_dict(smk.params.probe, "probe")
    kind = dict(smk.wildcards).get("pkind", "logreg")
    m = probe_embeddings(smk.input.npz, smk.output.metrics, cv_folds=int(probe.cv_folds), kind=kind)
    if kind == "logreg":
        plot_confusion(
            m["confusion_matrix"],
            m["classes"],
            smk.output.confusion,
            title=f"{m['model']} ({m['regime']}): accuracy {m['accuracy']:.2f}",
        )


run_script(snakemake, main)
