"""The plan's part for the species probe (config ``probe``): which models and runs are
embedded and probed, each embedding job's inputs, the probe's metric and map files, and the
layer probe (``probe.layers``, ``probe.pooling``, ``probe.layer_models``): which embeddings it
covers, its files, and the poolings a model cannot take."""

from __future__ import annotations

import re

from dnalm.core.config import ProbeConfig
from dnalm.core.errors import ConfigError
from dnalm.evaluation.probe_kinds import check_kinds

#: the regimes whose embeddings the layer probe covers (not the random-init controls, nor the
#: dnatext models, which have an embedding rule of their own)
LAYER_REGIMES = ("pretrained", "fine-tuned", "external")


class ProbeMixin:
    """Plan methods for the species probe (mixed into dnalm.plan.plan.Plan)."""

    config: dict
    models: dict[str, dict]
    runs: dict[str, dict]

    @property
    def probe(self) -> dict:
        return self.config["probe"]

    def probe_enabled(self) -> bool:
        return self.probe["enabled"] and self.probe["task"] in self.task_names()

    def probe_models(self) -> list[str]:
        models = self.probe["models"]
        if models is None:  # every model but the sweeps' runs
            models = sorted(set(self.models) - self.sweep_models - self.replicate_models)
        models = list(models)
        unknown = sorted(set(models) - set(self.models))
        if unknown:
            raise ConfigError(f"probe.models: {unknown} are not under pretrain.models")
        return models

    def probe_finetuned(self) -> list[str]:
        runs = list(self.probe["finetuned"] or [])
        for r in runs:
            if r not in self.runs:
                raise ConfigError(f"probe.finetuned: {r!r} is not under finetune.runs")
            if self.probe["task"] == "species_fragments":
                self.check_species_task(f"probe.finetuned ({r!r})")
            if self.probe["task"] not in self.run_tasks(r):
                raise ConfigError(
                    f"probe.finetuned: run {r!r} does not train on the probe task "
                    f"{self.probe['task']!r}; add it to the run's tasks"
                )
        return runs

    def probe_random_init(self) -> list[str]:
        """The embedded models whose architecture is also embedded with random weights:
        `probe.random_init` true (all of them), false (none) or a list of them."""
        chosen = self.probe["random_init"]
        models = self.probe_models()
        if isinstance(chosen, bool):
            return list(models) if chosen else []
        for name in chosen:
            if name not in models:
                raise ConfigError(
                    f"probe.random_init: {name!r} is not one of the embedded models "
                    f"({', '.join(models) or 'none'}); list models of probe.models, or write "
                    "true for all of them"
                )
        return [m for m in models if m in chosen]

    def embeddings(self) -> list[tuple[str, str]]:
        """(regime, name) of every embedded model."""
        out = [("pretrained", m) for m in self.probe_models()]
        out += [("random-init", m) for m in self.probe_random_init()]
        out += [("fine-tuned", r) for r in self.probe_finetuned()]
        out += [("external", e) for e in sorted(self.probe["external"] or {})]
        out += [("dnatext", m) for m in self.dnatext_probe_models()]
        return out

    def embed_inputs(self, wildcards) -> dict:
        task = f"results/tasks/{self.probe['task']}/data.tsv"
        regime, name = wildcards.eregime, wildcards.ename
        if regime in ("pretrained", "random-init"):
            if name not in self.models:
                raise ConfigError(f"no pretrained model {name!r}")
            return {**self.model_files(name), "task": task}
        if regime == "fine-tuned":
            return {
                "metrics": f"{self.run_dir('finetune', name, self.probe['task'])}/metrics.json",
                "task": task,
                **self.finetuned_code_record(name),
            }
        if regime == "external" and self.probe_external_model(name) is not None:
            return {"provenance": self.probe_external_params(name)["record"], "task": task}
        return {"task": task}

    def embed_model_dir(self, wildcards) -> str:
        """The model folder (or, for an external model, the folder or hub id) to embed."""
        regime, name = wildcards.eregime, wildcards.ename
        if regime in ("pretrained", "random-init"):
            return self.run_dir("pretrain", name)
        if regime == "fine-tuned":
            return f"{self.run_dir('finetune', name, self.probe['task'])}/model"
        return self.probe["external"][name]["model"]

    def probe_kinds(self) -> list[str]:
        """probe.kinds, checked (logreg first, then the other kinds)."""
        return check_kinds(self.probe["kinds"])

    def probe_metric_files(self) -> list[str]:
        """Metrics of every probe row: logreg under results/probe/metrics/{regime}/, every
        other kind of probe.kinds under results/probe/metrics/{kind}/{regime}/."""
        rows = [f"{r}/{n}" for r, n in self.embeddings()]
        rows.append(f"kmer-baseline/kmer{self.probe['kmer_k']}")
        files = []
        for kind in self.probe_kinds():
            prefix = "" if kind == "logreg" else f"{kind}/"
            files += [f"results/probe/metrics/{prefix}{row}.json" for row in rows]
        return files

    def umap_files(self, what: str) -> list[str]:
        """The files of the one ``umap`` job, in the order of :meth:`embeddings`: ``npz``
        (its inputs, the embeddings), ``coords`` (the coordinate tables) or ``figures``. One
        job draws every map, so umap-learn's import and numba's compilation are paid once."""
        pattern = {
            "npz": "results/probe/embeddings/{}/{}.npz",
            "coords": "results/probe/umap/{}/{}.tsv",
            "figures": "results/figures/probe/umap/{}/{}.png",
        }[what]
        return [pattern.format(r, n) for r, n in self.embeddings()]

    # ---- the layer probe

    @property
    def probe_settings(self) -> ProbeConfig:
        return ProbeConfig.from_dict(self.probe, "probe")

    def layer_probes(self) -> list[tuple[str, str]]:
        """(regime, name) of every embedding whose layers are probed: none unless
        probe.layers is not `last` or probe.pooling lists several methods; then those of
        probe.layer_models (null: every pretrained, fine-tuned and external embedding)."""
        settings, chosen = self.probe_settings, self.probe["layer_models"]
        if not settings.layer_wise:
            if chosen:
                raise ConfigError(
                    "probe.layer_models: the layer probe is off (probe.layers is last and "
                    "probe.pooling names one method); set probe.layers (all, or a list of "
                    "layers) or list several poolings, or remove probe.layer_models"
                )
            return []
        if not self.probe_enabled():
            return []
        candidates = [(r, n) for r, n in self.embeddings() if r in LAYER_REGIMES]
        if chosen is None:
            return candidates
        names = sorted({n for _, n in candidates})
        unknown = [m for m in chosen if m not in names]
        if unknown:
            raise ConfigError(
                f"probe.layer_models: {unknown} are not embedded by the probe (embedded: "
                f"{', '.join(names) or 'none'}); list names of probe.models, probe.finetuned "
                "or probe.external"
            )
        return [(r, n) for r, n in candidates if n in chosen]

    def layer_probe_constraints(self) -> dict[str, str]:
        """Rule embed_layers' wildcard constraints: the regimes and names of
        :meth:`layer_probes` (every name is layer-probed in each of these regimes where it
        is embedded, so no other embedding matches)."""
        pairs = self.layer_probes()
        return {
            "eregime": "|".join(sorted({r for r, _ in pairs})),
            "ename": "|".join(re.escape(n) for n in sorted({n for _, n in pairs})),
        }

    def layer_metric_files(self) -> list[str]:
        """The layer probe's metrics, one per layer-probed embedding."""
        return [f"results/probe/layers/metrics/{r}/{n}.json" for r, n in self.layer_probes()]

    def layer_probe_targets(self) -> list[str]:
        if not self.layer_probes():
            return []
        return ["results/probe/layer_table.tsv", "results/figures/probe/layer_probe.png"]

    def embedding_is_causal(self, regime: str, name: str) -> bool | None:
        """Whether an embedded model is causal (gpt); None where the plan cannot know (a
        probe.external folder or hub id given directly: the embedding job checks it)."""
        if regime in ("pretrained", "random-init"):
            return self.models[name]["objective"] == "gpt"
        if regime == "fine-tuned":
            model = self.runs[name]["model"]
            if model in self.models:
                return self.models[model]["objective"] == "gpt"
            return self.external[model].objective == "gpt"
        if regime == "external":
            entry = self.probe_external_model(name)
            return None if entry is None else entry.objective == "gpt"
        return False  # dnatext: masked models

    def check_probe_pooling(self) -> None:
        """`cls` pooling takes the first token, which in a causal model attends only to
        itself, so every sequence would get the same vector: refused for the causal models
        the plan knows, naming the key and the model."""
        if not self.probe_enabled():
            return
        settings = self.probe_settings
        layer_wise = set(self.layer_probes())
        for regime, name in self.embeddings():
            key, pooling = "probe.pooling", settings.main_pooling
            own = self.probe["external"][name].get("pooling") if regime == "external" else None
            if own:
                key, pooling = f"probe.external.{name}.pooling", own
            hint = "use last, mean or max for it"
            if pooling != "cls" and (regime, name) in layer_wise and "cls" in settings.poolings:
                key, pooling = "probe.pooling", "cls"  # the layer probe's list
                hint += ", or leave it out of probe.layer_models"
            if pooling == "cls" and self.embedding_is_causal(regime, name):
                raise ConfigError(
                    f"{key}: 'cls' pools the first token, and {name} ({regime}) is a causal "
                    "model whose first token attends only to itself, so every sequence would "
                    f"get the same vector; {hint}"
                )
