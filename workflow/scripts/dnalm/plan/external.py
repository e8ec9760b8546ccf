"""The plan's part for external models (``models.external``, dnalm.core.hub): which runs and
probes use them, what each rule reads of them, and the checks of what a model cannot do
(the regime, the task, generation), each naming the key at fault."""

from __future__ import annotations

from typing import Any

from dnalm.core.errors import ConfigError
from dnalm.core.hub import FINETUNE_REGIMES, RECORD, ExternalModel, check_use


class ExternalMixin:
    """Plan methods for external models (mixed into dnalm.plan.plan.Plan)."""

    external: dict[str, ExternalModel]
    runs: dict[str, dict]
    models: dict[str, dict]
    model_files: Any  # the Plan's method

    def external_record(self, name: str) -> str:
        """The provenance record of external entry `name` (rule fetch_external_model)."""
        return RECORD.format(ename=name)

    def external_spec(self, name: str) -> dict[str, Any]:
        """The entry as the fetch rule and the loaders take it (a plain dict)."""
        if name not in self.external:
            raise ConfigError(f"no external model {name!r} under models.external")
        return self.external[name].spec()

    def run_external(self, run: str) -> ExternalModel | None:
        """The external model a fine-tuning run fine-tunes (None: a pretrain.models entry)."""
        return self.external.get(self.runs[run]["model"])

    def finetune_external(self, run: str) -> dict[str, Any]:
        """What rule finetune takes of a run's external model: the entry and its record
        ({} for a run on a pretrain.models entry)."""
        return self.model_external(self.runs[run]["model"])

    def check_external_runs(self) -> None:
        """Fine-tuning runs on external models: a regime fine-tuning has, published weights
        (no random_init); a probed one's embedding before fine-tuning. ConfigError naming the
        run."""
        if self.probe_enabled():
            for run in self.probe_finetuned():
                self.umap_before(run)
        interpret = self.config.get("interpret") or {}
        for task, names in sorted((interpret.get("runs") or {}).items()):
            for run in names or []:
                model = self.run_external(run) if run in self.runs else None
                if interpret.get("enabled") and model is not None and model.trust_remote_code:
                    raise ConfigError(
                        f"interpret.runs.{task}: run {run!r} fine-tunes {model.key}, whose "
                        "own code the fine-tuned folder would need; explaining it is not "
                        "available yet (remove the run there)"
                    )
        for run in sorted(self.runs):
            model = self.run_external(run)
            if model is None:
                continue
            where = f"finetune.runs.{run}"
            check_use(model, "finetune", f"{where}.model")
            spec = self.runs[run]
            regime = spec.get("regime") or (spec.get("train") or {}).get("regime")
            regime = regime or self.config["finetune"]["train"].get("regime", "full")
            if regime not in FINETUNE_REGIMES:
                raise ConfigError(
                    f"{where}.regime: {regime!r} is not available for the external model "
                    f"{model.key} (available: {', '.join(FINETUNE_REGIMES)}); set regime "
                    "to one of them"
                )
            if spec.get("random_init"):
                raise ConfigError(
                    f"{where}.random_init: an external model is fine-tuned from its published "
                    "weights; remove random_init"
                )

    def probe_external_model(self, name: str) -> ExternalModel | None:
        """The models.external entry that probe.external.<name> embeds (its `model` names
        it), or None for a folder or hub id given directly."""
        return self.external.get(str(self.probe["external"][name]["model"]))

    def check_probe_external(self) -> None:
        """probe.external entries naming a models.external entry: the entry's own settings
        stay on the entry."""
        for name, spec in sorted((self.probe["external"] or {}).items()):
            model = self.probe_external_model(name)
            if model is not None:
                check_use(model, "probe", f"probe.external.{name}.model")
                if spec.get("trust_remote_code"):
                    raise ConfigError(
                        f"probe.external.{name}.trust_remote_code: set it on the entry "
                        f"{model.key} instead (with its 40-hex revision); remove it here"
                    )

    def external_notes(self) -> list[str]:
        """Warnings for the log: probe.external entries that run remote code without a pin
        (the older form, kept working; a models.external entry pins and records it)."""
        return [
            f"probe.external.{name}: trust_remote_code runs the code of {spec['model']} as it "
            "is today, unpinned and unrecorded; declare it under models.external with a "
            f"40-hex revision and trust_remote_code: true, and write model: {name} here"
            for name, spec in sorted((self.probe["external"] or {}).items())
            if spec.get("trust_remote_code") and self.probe_external_model(name) is None
        ]

    def probe_external_params(self, name: str) -> dict[str, Any]:
        """What rule embed takes of probe.external.<name>: its settings, and the entry (with
        its record) when it names a models.external entry."""
        spec = dict(self.probe["external"].get(name) or {})
        model = self.probe_external_model(name) if name in self.probe["external"] else None
        if model is not None:
            spec["entry"] = model.spec()
            spec["record"] = self.external_record(model.name)
        return spec

    def finetuned_code_record(self, run: str) -> dict[str, str]:
        """What embedding a fine-tuned run's folder reads besides it: for a run on an entry
        with its own code (the folder carries that code), the entry's provenance record the
        code is checked against; {} otherwise."""
        model = self.run_external(run)
        if model is None or not model.trust_remote_code:
            return {}
        return {"provenance": self.external_record(model.name)}

    def embed_external(self, regime: str, name: str) -> dict[str, Any]:
        """Rule embed's `external` param: a probe.external entry's settings
        (:meth:`probe_external_params`); for a fine-tuned run on an entry with its own code,
        ``{"finetuned_from": entry}``; {} otherwise."""
        if regime == "external":
            return self.probe_external_params(name)
        if regime == "fine-tuned" and self.finetuned_code_record(name):
            return {"finetuned_from": self.run_external(name).spec()}
        return {}

    def umap_before(self, run: str) -> str:
        """The UMAP table of a fine-tuned run's backbone before fine-tuning: its pretrained
        model's, or for an external model the probe.external entry that embeds it."""
        model = self.run_external(run)
        if model is None:
            return f"results/probe/umap/pretrained/{self.runs[run]['model']}.tsv"
        names = [
            n for n in sorted(self.probe["external"] or {}) if self.probe_external_model(n) == model
        ]
        if not names:
            raise ConfigError(
                f"probe.finetuned: run {run!r} fine-tunes the external model {model.key}, "
                "whose embedding before fine-tuning is not probed; add probe.external: "
                f"{{{model.name}: {{model: {model.name}}}}}"
            )
        return f"results/probe/umap/external/{names[0]}.tsv"

    def model_inputs(self, name: str) -> dict[str, str]:
        """What a rule using model `name` reads: a pretrained model's files, or an external
        model's provenance record (written by rule fetch_external_model)."""
        if name in self.external:
            return {"provenance": self.external_record(name)}
        return self.model_files(name)

    def model_external(self, name: str) -> dict[str, Any]:
        """What a rule using model `name` passes as `external`: the entry and its record for
        an external model, {} for a pretrained one."""
        model = self.external.get(name)
        if model is None:
            return {}
        return {"entry": model.spec(), "record": self.external_record(name)}
