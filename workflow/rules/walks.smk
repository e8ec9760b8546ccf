# 2-D pictures of sequences: DNA walks and chaos-game representation (CGR) of each sample's
# held-out CDS, and natural vs generated sequences (CGR and a k-mer UMAP) of every causal model.


rule walk_figures:
    input:
        **PLAN.splits_input(PLAN.walk_samples()),
    output:
        walks=report(
            "results/figures/walks/walks.png",
            caption="../report/walks.rst",
            category="7. Walks and CGR",
            labels={"figure": "DNA walks"},
        ),
        cgr=report(
            "results/figures/walks/cgr.png",
            caption="../report/walks_cgr.rst",
            category="7. Walks and CGR",
            labels={"figure": "CGR per sample"},
        ),
    log:
        "results/logs/figures/walks.log",
    benchmark:
        "results/benchmarks/figures/walks.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        samples=PLAN.walk_samples(),
        test=PLAN.split_files(PLAN.walk_samples(), ["test"])["test"],
        walks=config["walks"],
    script:
        "../scripts/walk_figures.py"


rule walk_generated_figures:
    input:
        expand(
            "results/generate/{model}/{f}.fa.gz",
            model=PLAN.walk_generated_models(),
            f=["natural", "samples", "markov"],
        ),
    output:
        umap_tsv="results/figures/walks/generated_umap.tsv",
        cgr=report(
            "results/figures/walks/generated_cgr.png",
            caption="../report/walks_generated_cgr.rst",
            category="7. Walks and CGR",
            labels={"figure": "CGR natural vs generated"},
        ),
        umap=report(
            "results/figures/walks/generated_umap.png",
            caption="../report/walks_generated_umap.rst",
            category="7. Walks and CGR",
            labels={"figure": "UMAP natural vs generated"},
        ),
    log:
        "results/logs/figures/walks_generated.log",
    benchmark:
        "results/benchmarks/figures/walks_generated.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        models=PLAN.walk_generated_models(),
        walks=config["walks"],
        umap=PLAN.probe["umap"],
    script:
        "../scripts/walk_generated_figures.py"
