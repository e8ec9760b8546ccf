# Tokenizers (fixed vocabularies, or BPE trained on the pretraining samples' training split)
# and the tokenized pretraining corpora: results/corpus/{corpus}/{tok}, one per corpus of
# `corpora` (CDS splits, or genome/region windows) and tokenizer.


rule tokenizer:
    input:
        unpack(PLAN.tokenizer_training_input),
    output:
        directory("results/tokenizers/{tok}"),
    log:
        "results/logs/tokenize/{tok}.tokenizer.log",
    benchmark:
        "results/benchmarks/tokenize/{tok}.tokenizer.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        spec=lambda wc: PLAN.tokenizer_spec(wc.tok),
        train=lambda wc: PLAN.tokenizer_training_files(wc.tok),
    script:
        "../scripts/make_tokenizer.py"


rule corpus:
    input:
        unpack(PLAN.corpus_split_inputs),
        tokenizer="results/tokenizers/{tok}",
    output:
        directory("results/corpus/{corpus}/{tok}"),
    log:
        "results/logs/tokenize/{corpus}/{tok}.corpus.log",
    benchmark:
        "results/benchmarks/tokenize/{corpus}/{tok}.corpus.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        cfg=lambda wc: PLAN.corpus_build_settings(wc.corpus),
        files=lambda wc: PLAN.corpus_split_files(wc.corpus),
    script:
        "../scripts/build_corpus.py"
