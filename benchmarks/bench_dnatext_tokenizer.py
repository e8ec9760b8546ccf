"""Time DNATextTokenizer.encode in a loop against one encode_batch call; prints the ratio.

PYTHONPATH=workflow/scripts python benchmarks/bench_dnatext_tokenizer.py
"""

import random
import time

from dnalm.multimodal.tokenizer import DNATextTokenizer, train_wordpiece
from dnalm.tokenization.build import build_tokenizer

rng = random.Random(0)
seqs = ["".join(rng.choice("ACGT") for _ in range(480)) for _ in range(2000)]
dna = build_tokenizer({"type": "bpe", "vocab_size": 512}, seqs[:200])
words = ["protein", "ribosomal", "dna", "repair", "subunit", "alpha", "kinase", "of"]
text = [" ".join(rng.choice(words) for _ in range(8)) for _ in range(200)]
tok = DNATextTokenizer(train_wordpiece(text, 200), dna)
sents = [f"{text[i % 200]} <dna>{s}</dna> {text[(i + 1) % 200]}" for i, s in enumerate(seqs)]
t0 = time.perf_counter()
for s in sents:
    tok.encode(s)
loop = time.perf_counter() - t0
t0 = time.perf_counter()
tok.encode_batch(sents)
batch = time.perf_counter() - t0
print(f"{len(sents)} sentences: loop {loop:.3f} s, batch {batch:.3f} s, ratio {loop / batch:.1f}x")
