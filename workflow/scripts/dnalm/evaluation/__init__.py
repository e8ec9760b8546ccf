"""Metrics, language-model scoring, embeddings, probes and inference (rules in probe.smk)."""
