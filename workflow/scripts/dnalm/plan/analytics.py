"""Checkpoint analytics (analytics.smk, dnalm.evaluation.analytics): which pretraining runs
keep their checkpoints and are measured at each, which sweeps are measured over their runs,
and what the one job of each reads. A mixin of dnalm.plan.plan.Plan; it uses the Plan's
models, sweeps and corpora, and the probe and vep stages' settings."""

from __future__ import annotations

from dnalm.core.errors import ConfigError


class AnalyticsMixin:
    """Methods of the Plan for checkpoint analytics."""

    @property
    def analytics(self) -> dict:
        return self.config["analytics"]

    def analytics_runs(self) -> list[str]:
        """pretrain.models entries measured at their kept checkpoints (analytics.runs)."""
        if not self.analytics["enabled"]:
            return []
        runs = list(self.analytics["runs"])
        for m in runs:
            if m not in self.models:
                hint = " (a sweep: put it under analytics.sweeps)" if m in self.sweeps else ""
                raise ConfigError(
                    f"analytics.runs: {m!r} is not under pretrain.models{hint} "
                    f"(defined: {', '.join(sorted(self.models)) or 'none'})"
                )
        return runs

    def analytics_sweeps(self) -> list[str]:
        """Sweeps measured over the final models of their runs (analytics.sweeps)."""
        if not self.analytics["enabled"]:
            return []
        sweeps = list(self.analytics["sweeps"])
        for s in sweeps:
            if s not in self.sweeps:
                raise ConfigError(
                    f"analytics.sweeps: {s!r} is not under sweeps "
                    f"(defined: {', '.join(sorted(self.sweeps)) or 'none'})"
                )
            if len(self.sweeps[s]) < 2:
                raise ConfigError(
                    f"analytics.sweeps: sweep {s!r} has {len(self.sweeps[s])} run; a rank "
                    "correlation needs two or more (add sizes or budgets to the sweep)"
                )
        return sweeps

    def check_analytics(self) -> None:
        """The section's checks: known runs and sweeps, something to measure."""
        if not self.analytics["enabled"]:
            return
        if not self.analytics_runs() and not self.analytics_sweeps():
            raise ConfigError(
                "analytics.enabled is true, but analytics.runs and analytics.sweeps are both "
                "empty; name pretrain.models entries under analytics.runs (measured at each "
                "kept checkpoint) or sweeps under analytics.sweeps, or set analytics.enabled: "
                "false"
            )

    def keeps_checkpoints(self, model: str) -> bool:
        """Whether a pretraining run keeps every checkpoint: those under analytics.runs."""
        return model in self.analytics_runs()

    def analytics_settings(self) -> dict:
        """The section with the probe's (layer, pooling, batch size, CV folds) and the vep
        stage's (window, edge, strand averaging) settings the measures share with them."""
        probe, vep = self.config["probe"], self.config["vep"]
        return {
            **self.analytics,
            "probe": {
                **{k: probe[k] for k in ("layer", "batch_size", "cv_folds")},
                "pooling": self.probe_settings.main_pooling,  # a list's first: the main one
            },
            "vep": {k: vep[k] for k in ("window", "edge", "rc_average")},
        }

    def _analytics_model(self, wildcards) -> str:
        """The model whose corpus gives the validation windows: the run, or a sweep's first."""
        if hasattr(wildcards, "sweep"):
            return self.sweeps[wildcards.sweep][0].model
        return wildcards.model

    def analytics_validation_files(self, wildcards) -> list[str]:
        model = self._analytics_model(wildcards)
        return self.corpus_split_files(self.models[model]["corpus"])["validation"]

    def analytics_uses_probe(self) -> bool:
        return self.probe_enabled()

    def analytics_vep_sample(self) -> str | None:
        return self.vep_sample() if self.vep["enabled"] else None

    def analytics_inputs(self, wildcards) -> dict:
        """The run's model files (a sweep: every run's), the validation split (a CDS corpus:
        the gathered split table; its FASTAs are a param), the probe task's table and the
        vep stage's simulated SNVs with the FASTA they sit on, where those stages are on."""
        out: dict = {}
        for m in self.analytics_model_dirs(wildcards):
            out.update({f"{m}_{k}": v for k, v in self.model_files(m).items()})
        spec = self.corpora[self.models[self._analytics_model(wildcards)]["corpus"]]
        if spec["source"] == "cds":
            out.update(self.splits_input(spec["samples"]))
        else:
            out["validation"] = self.analytics_validation_files(wildcards)
        if self.analytics_uses_probe():
            out["probe_task"] = f"results/tasks/{self.probe['task']}/data.tsv"
        sample = self.analytics_vep_sample()
        if sample is not None:
            out["simulated"] = f"results/vep/{sample}/variants.tsv"
            out["vcf"] = f"results/vep/{sample}/variants.vcf"
            out["fasta"] = f"results/splits/{sample}/test.fa.gz"
        return out

    def analytics_model_dirs(self, wildcards) -> dict[str, str]:
        """The model folder of the run, or of each run of the sweep (name -> folder)."""
        if hasattr(wildcards, "sweep"):
            models = [p.model for p in self.sweeps[wildcards.sweep]]
        else:
            models = [wildcards.model]
        return {m: self.run_dir("pretrain", m) for m in models}

    def analytics_targets(self) -> list[str]:
        out = []
        for m in self.analytics_runs():
            out += [
                f"results/analytics/runs/{m}/checkpoints.tsv",
                f"results/analytics/runs/{m}/correlations.tsv",
                f"results/figures/analytics/runs/{m}.png",
            ]
        for s in self.analytics_sweeps():
            out += [
                f"results/analytics/sweeps/{s}/checkpoints.tsv",
                f"results/analytics/sweeps/{s}/correlations.tsv",
                f"results/figures/analytics/sweeps/{s}.png",
            ]
        return out
