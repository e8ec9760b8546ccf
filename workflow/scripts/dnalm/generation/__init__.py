"""Generation stage: sequences sampled from causal models (held-out prefixes and free samples),
a count-model (Markov-k / codon trigram) sampler as the baseline, and the metrics that judge
generated against natural held-out sequences."""
