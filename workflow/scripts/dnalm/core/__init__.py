"""Shared by every stage: errors, file I/O, logging, the Snakemake script glue, device and
precision choice, config dataclasses, and the one DNA alphabet."""
