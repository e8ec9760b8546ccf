"""What a model knows: gene completion (genecomp.smk, dnalm.generation.genecomp) and the
robustness panel (robustness.smk, dnalm.evaluation.robustness). A mixin of
dnalm.plan.plan.Plan; it uses the Plan's models, samples, corpora and external entries, and
the generation stage's helpers (the corpus and token width of a model)."""

from __future__ import annotations

from collections.abc import Mapping

from dnalm.core.errors import ConfigError
from dnalm.core.hub import check_use
from dnalm.evaluation.robustness import check_settings as check_robustness
from dnalm.kinds.tokenizers import token_width

#: the gene-completion baselines, each a job beside the models' (dnalm.generation.genecomp)
GENECOMP_BASELINES = ("markov", "codon_trigram", "nearest_gene")


def check_gene_completion(settings: Mapping) -> None:
    """ConfigErrors naming the gene_completion key at fault (what the schema cannot say)."""
    fractions = [float(f) for f in settings["prompt_fractions"]]
    if len(set(fractions)) != len(fractions):
        raise ConfigError(
            f"gene_completion.prompt_fractions has repeats: {settings['prompt_fractions']}; "
            "give each prompt fraction once"
        )
    for f in fractions:
        if not 0 < f < 1:
            raise ConfigError(
                f"gene_completion.prompt_fractions: {f} is not a fraction strictly between 0 "
                "and 1 of the gene (e.g. 0.25: the first quarter is the prompt)"
            )


class KnowledgeMixin:
    """Methods of the Plan for gene completion and the robustness panel."""

    # ---- gene completion (genecomp.smk)

    @property
    def gene_completion(self) -> dict:
        return self.config["gene_completion"]

    def _own_models(self) -> list[str]:
        return [
            m for m in self.models if m not in self.sweep_models and m not in self.replicate_models
        ]

    @property
    def genecomp_baselines(self) -> tuple[str, ...]:
        return GENECOMP_BASELINES

    def genecomp_models(self) -> list[str]:
        """Causal models that complete genes (gene_completion.models, default every gpt
        model that is not a sweep's or a replicate's run)."""
        return self.sampling_models("gene_completion.models", self.gene_completion["models"])

    def genecomp_samples(self) -> list[str]:
        """Samples whose held-out CDS are completed (default every sample with CDS)."""
        cfg = self.gene_completion["samples"]
        samples = sorted(self.cds_samples) if cfg is None else list(cfg)
        outside = [s for s in samples if s not in self.cds_samples]
        if outside:
            raise ConfigError(
                f"gene_completion.samples: {', '.join(outside)} "
                f"{'is not a sample' if len(outside) == 1 else 'are not samples'} with CDS "
                f"(samples with CDS: {', '.join(sorted(self.cds_samples)) or 'none'})"
            )
        return samples

    def genecomp_enabled(self) -> bool:
        if not self.gene_completion["enabled"]:
            return False
        check_gene_completion(self.gene_completion)
        return bool(self.genecomp_models()) and bool(self.genecomp_samples())

    def genecomp_unit(self, model: str) -> int:
        """nt per token of a model's tokenizer (prompts are whole tokens and codons)."""
        return self.generate_unit(model)

    def genecomp_splits(self) -> dict[str, list[str]]:
        """{test, train}: the split FASTAs of the gene-completion samples, in their order."""
        return self.split_files(self.genecomp_samples(), ["test", "train"])

    def genecomp_model_inputs(self, wildcards) -> dict:
        return {
            **self.model_inputs(wildcards.model),
            **self.splits_input(self.genecomp_samples()),
        }

    def genecomp_baseline_inputs(self, wildcards) -> dict:
        return self.splits_input(self.genecomp_samples())

    def genecomp_tables(self) -> list[str]:
        """Every continuation table the summary reads: each model's, then each baseline's."""
        return [f"results/gene_completion/models/{m}.tsv" for m in self.genecomp_models()] + [
            f"results/gene_completion/baselines/{b}.tsv" for b in GENECOMP_BASELINES
        ]

    def genecomp_sources(self) -> list[str]:
        return [*self.genecomp_models(), *GENECOMP_BASELINES]

    def genecomp_targets(self) -> list[str]:
        if not self.genecomp_enabled():
            return []
        return [
            "results/gene_completion/summary.tsv",
            "results/figures/gene_completion/summary.png",
        ]

    # ---- the robustness panel (robustness.smk)

    @property
    def robustness(self) -> dict:
        return self.config["robustness"]

    def robustness_models(self) -> list[str]:
        """Models of the panel (robustness.models, default every pretrain model that is not
        a sweep's or a replicate's run)."""
        cfg = self.robustness["models"]
        models = self._own_models() if cfg is None else list(cfg)
        for m in models:
            if m in self.external:
                check_use(self.external[m], "vep", "robustness.models")
            elif m not in self.models:
                raise ConfigError(
                    f"robustness.models: {m!r} is not under pretrain.models or models.external "
                    f"(defined: {', '.join(sorted(self.models)) or 'none'})"
                )
        return models

    def robustness_enabled(self) -> bool:
        if not self.robustness["enabled"]:
            return False
        check_robustness(self.robustness)
        return bool(self.robustness_models())

    def robustness_k(self, model: str) -> int:
        """nt per token (phase rows when > 1): 1 for an external model."""
        if model in self.external:
            return 1
        return token_width(self.tokenizers[self.models[model]["tokenizer"]])

    def robustness_test_files(self, model: str) -> list[str]:
        """The held-out sequences the windows come from: the test split of the model's corpus
        (an external model: the corpus of generate.reference_model)."""
        return self.corpus_split_files(self._generate_corpus_name(model))["test"]

    def robustness_inputs(self, wildcards) -> dict:
        corpus = self._generate_corpus_name(wildcards.model)
        spec = self.corpora[corpus]
        files = (
            self.splits_input(spec["samples"])
            if spec["source"] == "cds"
            else {"test": self.robustness_test_files(wildcards.model)}
        )
        return {**self.model_inputs(wildcards.model), **files}

    def robustness_targets(self) -> list[str]:
        if not self.robustness_enabled():
            return []
        out = []
        for m in self.robustness_models():
            out += [f"results/robustness/{m}/panel.tsv", f"results/figures/robustness/{m}.png"]
        return out
