"""The plan's part for the species probe (config ``probe``): which models and runs are
embedded and probed, each embedding job's inputs, and the probe's metric and map files."""

from __future__ import annotations

from dnalm.core.errors import ConfigError
from dnalm.evaluation.probe_kinds import check_kinds


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
