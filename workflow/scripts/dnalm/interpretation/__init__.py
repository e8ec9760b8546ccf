"""Attribution and motifs: what fine-tuned task models and the one-hot CNN base their
predictions on.

- :mod:`dnalm.interpretation.attribution`: in-silico mutagenesis, gradient x input and
  integrated gradients (captum) in base space, for one-hot and token models;
- :mod:`dnalm.interpretation.motifs`: the bound-vs-unbound AUROC of |attribution|, seqlets,
  a simple seqlet clustering into motifs and a motif-comparison score;
- :mod:`dnalm.interpretation.run`: one run (model x task) -> ``attributions.npz`` and
  ``summary.tsv``; :func:`dnalm.interpretation.run.interpret_run`.
"""
