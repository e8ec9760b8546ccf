"""Shared inputs of the VEP and command-line tests: a two-step training (the model only has
to load and score), a VCF header and a small contig."""

from __future__ import annotations

TRAIN = {
    "max_steps": 2,  # next to random weights: the scores only need to be defined
    "micro_batch_size": 4,
    "eval_interval": 2,
    "warmup_steps": 1,
    "eval_batches": 1,
    "threads": 1,
    "test_eval": False,
}
HEAD = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
CONTIG = "ACGTTGCAACGGTACCATGATTACAGGCTAGCTAGGATCCAAGTCGATCGTAGCTAGCTAGGCTAACG"
