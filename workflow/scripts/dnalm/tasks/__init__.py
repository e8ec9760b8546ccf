"""Task datasets (rules in tasks.smk): species fragments, per-base TF binding, sequence tasks."""
