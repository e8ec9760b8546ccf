# Generation: samples of every causal model (held-out prefixes and free samples), a count-model
# (Markov-k / codon trigram) baseline and the natural held-out set, judged by one metric
# table per model and a summary of all models.
from types import SimpleNamespace

GENERATE = config["generate"]


def generate_models():
    """Causal models to sample from (generate.models, default every gpt model)."""
    causal = [m for m, s in PRETRAIN_MODELS.items() if s["objective"] == "gpt"]
    models = causal if GENERATE["models"] is None else list(GENERATE["models"])
    for m in models:
        if m not in PRETRAIN_MODELS:
            raise WorkflowError(
                f"generate.models: {m!r} is not under pretrain.models "
                f"(defined: {', '.join(sorted(PRETRAIN_MODELS)) or 'none'})"
            )
        if PRETRAIN_MODELS[m]["objective"] != "gpt":
            raise WorkflowError(
                f"generate.models: {m!r} is a masked (mlm) model; only causal (gpt) "
                "models generate"
            )
    return models


def generate_reference():
    """The model whose embeddings the Fréchet distance uses (the same for every row)."""
    ref = GENERATE["reference_model"]
    if ref is None:
        probe = PROBE["models"] or []
        ref = probe[0] if probe else next(iter(PRETRAIN_MODELS), None)
    if ref is not None and ref not in PRETRAIN_MODELS:
        raise WorkflowError(
            f"generate.reference_model: {ref!r} is not under pretrain.models "
            f"(defined: {', '.join(sorted(PRETRAIN_MODELS)) or 'none'})"
        )
    return ref


def token_unit(tokenizer_spec):
    """Nucleotides per token of a fixed-width tokenizer (codon 3, k-mer k), else 1."""
    kind = tokenizer_spec.get("type")
    if kind == "codon":
        return 3
    return int(tokenizer_spec.get("k", 1)) if kind == "kmer" else 1


def generate_enabled():
    return bool(GENERATE["enabled"]) and bool(generate_models())


def generate_corpus(model):
    return CORPORA[PRETRAIN_MODELS[model]["corpus"]]


def generate_splits(model):
    return corpus_split_inputs(SimpleNamespace(corpus=PRETRAIN_MODELS[model]["corpus"]))


def generate_inputs(wildcards):
    """The model, its corpus's test (prefixes, natural set) and training split (Markov
    baseline, memorisation) and the reference model of the Fréchet distance."""
    splits = generate_splits(wildcards.model)
    out = {
        **model_files(wildcards.model),
        "test": splits["test"],
        "train": splits["train"],
    }
    ref = generate_reference()
    if ref is not None:
        out.update({f"ref_{k}": v for k, v in model_files(ref).items()})
    return out


def generation_targets():
    if not generate_enabled():
        return []
    return [
        "results/generate/summary.tsv",
        "results/figures/generate/summary.png",
    ]


# One job per model samples (model, Markov baseline, natural set) and scores the three sets.
rule generate:
    input:
        unpack(generate_inputs),
    output:
        samples="results/generate/{model}/samples.fa.gz",
        markov="results/generate/{model}/markov.fa.gz",
        natural="results/generate/{model}/natural.fa.gz",
        table="results/generate/{model}/samples.tsv",
        metrics="results/generate/{model}/metrics.tsv",
    log:
        "results/logs/generate/{model}.log",
    benchmark:
        "results/benchmarks/generate/{model}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["finetune"]["threads"]
    resources:
        gpu=min(1, config["finetune"]["gpus"]),
    params:
        model_dir=lambda wc: run_dir("pretrain", wc.model),
        out_dir=lambda wc: f"results/generate/{wc.model}",
        settings=GENERATE,
        unit=lambda wc: token_unit(TOKENIZERS[PRETRAIN_MODELS[wc.model]["tokenizer"]]),
        cds=lambda wc: generate_corpus(wc.model)["source"] == "cds",
        reference=lambda wc: generate_reference() or "",
        reference_dir=lambda wc: (
            run_dir("pretrain", generate_reference()) if generate_reference() else None
        ),
        device="auto",
    script:
        "../scripts/generate_samples.py"


rule generation_summary:
    input:
        metrics=lambda wc: expand(
            "results/generate/{model}/metrics.tsv", model=generate_models()
        ),
    output:
        table=report(
            "results/generate/summary.tsv",
            caption="../report/generation_table.rst",
            category="6. Generation",
            labels={"table": "generation metrics"},
        ),
        figure=report(
            "results/figures/generate/summary.png",
            caption="../report/generation_summary.rst",
            category="6. Generation",
            labels={"figure": "generation vs Markov baseline"},
        ),
    log:
        "results/logs/generate/summary.log",
    conda:
        "../../envs/torch.yaml"
    params:
        models=lambda wc: generate_models(),
    script:
        "../scripts/generation_summary.py"
