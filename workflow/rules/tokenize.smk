# Tokenizers (fixed vocabularies, or BPE trained on the pretraining samples' training split)
# and the tokenized pretraining corpus of each tokenizer.


rule tokenizer:
    input:
        train=tokenizer_training_input,
    output:
        directory("results/tokenizers/{tok}"),
    log:
        "results/logs/tokenize/{tok}.tokenizer.log",
    benchmark:
        "results/benchmarks/tokenize/{tok}.tokenizer.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        spec=lambda wc: tokenizer_spec(wc.tok),
    script:
        "../scripts/make_tokenizer.py"


rule corpus:
    input:
        tokenizer="results/tokenizers/{tok}",
        train=expand("results/splits/{sample}/train.fa.gz", sample=PRETRAIN_SAMPLES),
        validation=expand(
            "results/splits/{sample}/validation.fa.gz", sample=PRETRAIN_SAMPLES
        ),
        test=expand("results/splits/{sample}/test.fa.gz", sample=PRETRAIN_SAMPLES),
    output:
        directory("results/corpus/{tok}"),
    log:
        "results/logs/tokenize/{tok}.corpus.log",
    benchmark:
        "results/benchmarks/tokenize/{tok}.corpus.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        cfg=config["corpus"],
    script:
        "../scripts/build_corpus.py"
