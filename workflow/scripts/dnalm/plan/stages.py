"""The later stages of the Plan (generation, variant effects, walks, sweeps, attribution,
DNA+text, the reproduction table, figures) and the run's targets. A mixin of
dnalm.plan.plan.Plan, kept apart so that each module stays readable; it uses the Plan's
attributes (config, models, runs, samples, ...) and its earlier-stage methods."""

from __future__ import annotations

from dnalm.core.errors import ConfigError
from dnalm.core.hub import check_use
from dnalm.core.seeds import replicate_base
from dnalm.generation.sequences import prefix_length
from dnalm.kinds.tasks import TASK_KINDS
from dnalm.kinds.tokenizers import token_width
from dnalm.tasks.generated import check_generated_task


class StagesMixin:
    """Methods of the Plan for the later stages and the targets (see the module docstring)."""

    # ---- generation (generate.smk) and generated task sets (tasks.smk)

    @property
    def generate(self) -> dict:
        return self.config["generate"]

    def generate_models(self) -> list[str]:
        """Causal models to sample from (generate.models, default every gpt model)."""
        return self.sampling_models("generate.models", self.generate["models"])

    def sampling_models(self, key: str, names: list[str] | None) -> list[str]:
        """The models a sampling stage uses: the config list `names` (under `key`), checked,
        or by default every causal pretrain.models entry that is not a sweep's or a
        replicate's run. A name must be a causal pretrain.models or models.external entry;
        anything else is refused naming the key."""
        if names is None:
            return [
                m
                for m, s in self.models.items()
                if s["objective"] == "gpt"
                and m not in self.sweep_models  # sweeps: their own summary
                and m not in self.replicate_models
            ]
        for m in names:
            if m in self.external:
                check_use(self.external[m], "generate", key)  # a causal one samples like ours
            elif m not in self.models:
                raise ConfigError(
                    f"{key}: {m!r} is not under pretrain.models or models.external "
                    f"(defined: {', '.join(sorted(self.models)) or 'none'})"
                )
            elif self.models[m]["objective"] != "gpt":
                raise ConfigError(
                    f"{key}: {m!r} is a masked (mlm) model; only causal (gpt) models sample "
                    "sequences"
                )
        return list(names)

    def generate_reference(self) -> str | None:
        """The model whose embeddings the Fréchet distance uses (the same for every row)."""
        ref = self.generate["reference_model"]
        if ref is None:
            probe = self.config["probe"]["models"] or []
            ref = probe[0] if probe else next(iter(self.models), None)
        if ref is not None and ref not in self.models:
            raise ConfigError(
                f"generate.reference_model: {ref!r} is not under pretrain.models "
                f"(defined: {', '.join(sorted(self.models)) or 'none'})"
            )
        return ref

    def generate_enabled(self) -> bool:
        return bool(self.generate["enabled"]) and bool(self.generate_models())

    def generate_corpus(self, model: str) -> dict:
        return self.corpora[self._generate_corpus_name(model)]

    def generate_splits(self, model: str) -> dict:
        return self.corpus_split_files(self._generate_corpus_name(model))

    def _generate_corpus_name(self, model: str) -> str:
        """The corpus a model's prompts and natural set come from: its own, or for an
        external model (trained on no corpus of ours) the reference model's."""
        if model in self.external:
            ref = self.generate_reference()
            if ref is None:
                raise ConfigError(
                    f"generate.models: the external model {model!r} is prompted from the "
                    "corpus of generate.reference_model, and there is none; add a "
                    "pretrain.models entry and name it as generate.reference_model"
                )
            model = ref
        return self.models[model]["corpus"]

    def generate_unit(self, model: str) -> int:
        """Nucleotides per token of a model's tokenizer (the sampling budget): 1 for an
        external model, whose tokens may be of any length (the samples are cut to
        prefix_nt + max_new_nt)."""
        if model in self.external:
            return 1
        return token_width(self.tokenizers[self.models[model]["tokenizer"]])

    def generate_inputs(self, wildcards) -> dict:
        """The model, its corpus's test (prefixes, natural set) and training split (Markov
        baseline, memorisation) and the reference model of the Fréchet distance."""
        splits = self.generate_splits(wildcards.model)
        out = {
            **self.model_inputs(wildcards.model),
            "test": splits["test"],
            "train": splits["train"],
        }
        ref = self.generate_reference()
        if ref is not None:
            out.update({f"ref_{k}": v for k, v in self.model_files(ref).items()})
        return out

    def generation_targets(self) -> list[str]:
        if not self.generate_enabled():
            return []
        return ["results/generate/summary.tsv", "results/figures/generate/summary.png"]

    def generated_task(self, task: str) -> dict | None:
        """The `generated` entry of a sequence task (TSTR / TRTS), checked, or None."""
        gen = check_generated_task(task, self.sequence_tasks[task])
        if gen is None:
            return None
        where = f"tasks.sequence_tasks.{task}.generated.model"
        model = gen["model"]
        if model not in self.models or self.models[model]["objective"] != "gpt":
            raise ConfigError(
                f"{where}: {model!r} is not a causal (gpt) model under pretrain.models"
            )
        if self.generate_corpus(model)["source"] == "task":
            raise ConfigError(
                f"{where}: {model!r} was trained on a task corpus, whose prompts have no species"
            )
        return gen

    def generated_task_params(self, task: str) -> dict | None:
        """What rule sequence_task needs of a generated set, or None. These are the model,
        set and role (task.json records them), keep_prompt, the prompt length
        (generate.prefix_nt in whole tokens, and whole codons on a CDS corpus, as the
        generation stage cuts it) and the species of each prompting test FASTA."""
        gen = self.generated_task(task)
        if gen is None:
            return None
        model = gen["model"]
        spec = self.generate_corpus(model)
        unit = token_width(self.tokenizers[self.models[model]["tokenizer"]])
        prompt_nt = prefix_length(self.generate["prefix_nt"], unit, spec["source"] == "cds")
        return {
            "model": model,
            "set": gen["set"],
            "role": gen["role"],
            "keep_prompt": bool(gen["keep_prompt"]),
            "prompt_nt": int(prompt_nt),
            "species": [self.samples[s].species for s in spec["samples"]],
        }

    # ---- variant effects (vep.smk)

    @property
    def vep(self) -> dict:
        return self.config["vep"]

    def vep_sample(self) -> str | None:
        """The sample whose held-out CDS carry the simulated SNVs (vep.sample, default the
        first CDS sample)."""
        cds = self.cds_samples
        sample = self.vep["sample"] or (cds[0] if cds else None)
        if sample is not None and sample not in cds:
            raise ConfigError(
                f"vep.sample: {sample!r} is not a sample with CDS "
                f"(samples with CDS: {', '.join(cds) or 'none'})"
            )
        return sample

    def vep_models(self) -> list[str]:
        """Models to score with (vep.models, default every pretrain model that is not a
        sweep's or a replicate's run)."""
        default = [
            m for m in self.models if m not in self.sweep_models and m not in self.replicate_models
        ]
        models = default if self.vep["models"] is None else list(self.vep["models"])
        for m in models:
            if m in self.external:
                check_use(self.external[m], "vep", "vep.models")
            elif m not in self.models:
                raise ConfigError(
                    f"vep.models: {m!r} is not under pretrain.models or models.external "
                    f"(defined: {', '.join(sorted(self.models)) or 'none'})"
                )
        return models

    @staticmethod
    def vep_simulate_inputs(wildcards) -> dict:
        """The sample's held-out CDS (test split), its training split (baselines) and the
        CDS table (genetic code per CDS)."""
        return {
            "test": [f"results/splits/{wildcards.sample}/test.fa.gz"],
            "train": [f"results/splits/{wildcards.sample}/train.fa.gz"],
            "cds_table": f"results/cds/{wildcards.sample}.tsv",
        }

    def vep_score_inputs(self, wildcards) -> dict:
        return {
            **self.model_inputs(wildcards.model),
            "vcf": f"results/vep/{wildcards.sample}/variants.vcf",
            "fasta": f"results/splits/{wildcards.sample}/test.fa.gz",
        }

    def vep_targets(self) -> list[str]:
        if not self.vep["enabled"] or not self.vep_models() or self.vep_sample() is None:
            return []
        sample = self.vep_sample()
        return [f"results/vep/{sample}/auroc.tsv", f"results/figures/vep/{sample}_auroc.png"]

    # ---- walks and figures (walks.smk, figures.smk)

    def walk_samples(self) -> list[str]:
        """Samples whose held-out CDS are drawn as walks and CGR images: every CDS sample."""
        return sorted(self.cds_samples) if self.config["walks"]["enabled"] else []

    def walk_generated_models(self) -> list[str]:
        """Causal models whose generated sequences are compared with natural ones: those of
        the generation stage, when both it and walks.generated are on."""
        walks = self.config["walks"]
        if not (walks["enabled"] and walks["generated"]) or not self.generate_enabled():
            return []
        return sorted(self.generate_models())

    def walk_targets(self) -> list[str]:
        figs = []
        if self.walk_samples():
            figs += ["results/figures/walks/walks.png", "results/figures/walks/cgr.png"]
        if self.walk_generated_models():
            figs += [
                "results/figures/walks/generated_cgr.png",
                "results/figures/walks/generated_umap.png",
            ]
        return figs

    def pretrain_figure_models(self) -> list[str]:
        """The models of the pretraining table and figures: all but the sweeps' runs (their
        own table and figure are under results/sweeps/)."""
        return sorted(set(self.models) - self.sweep_models)

    def figure_targets(self) -> list[str]:
        figs = self.walk_targets()
        if self.pretrain_figure_models():
            figs += ["results/figures/pretrain/curves.png", "results/figures/pretrain/time.png"]
        for task in self.task_names():
            if self.task_runs(task):
                figs += [
                    f"results/figures/finetune/{task}/{fig}.png"
                    for fig in ("performance", "time", "curves")
                ]
                if TASK_KINDS.get(self.task_kind(task)).classes:
                    figs.append(f"results/figures/finetune/{task}/calibration.png")
                if TASK_KINDS.get(self.task_kind(task)).per_base and any(
                    r not in self.cnn_runs and not r.startswith("kmer")
                    for r in self.task_runs(task)
                ):
                    figs.append(f"results/figures/finetune/{task}/tracks.png")
        if self.probe_enabled() and self.embeddings():
            figs.append("results/figures/probe/probe_accuracy.png")
            figs.append("results/figures/probe/calibration.png")
            figs += [f"results/figures/probe/umap/{r}/{n}.png" for r, n in self.embeddings()]
            figs += [f"results/figures/probe/confusion/{r}/{n}.png" for r, n in self.embeddings()]
            figs += [
                f"results/figures/probe/umap_before_after/{r}.png" for r in self.probe_finetuned()
            ]
        return figs

    # ---- scaling sweeps (sweep.smk)

    def sweep_points(self, sweep: str) -> list[dict]:
        """The runs of a sweep as plain records (sweep, model, size, budget, tokens, seed)."""
        keys = ("sweep", "model", "size", "budget", "tokens", "seed")
        return [{k: getattr(p, k) for k in keys} for p in self.sweeps[sweep]]

    def sweep_fit(self, sweep: str) -> dict:
        """The fit settings of a sweep: form (loglog | offset) and points (frontier | all)."""
        return {
            "form": "loglog",
            "points": "frontier",
            **(self.config["sweeps"][sweep].get("fit") or {}),
        }

    def sweep_targets(self) -> list[str]:
        patterns = (
            "results/sweeps/{sweep}/summary.tsv",
            "results/sweeps/{sweep}/fit.tsv",
            "results/figures/sweeps/{sweep}/scaling.png",
        )
        return [p.format(sweep=s) for p in patterns for s in sorted(self.sweeps)]

    # ---- attribution and motifs (interpret.smk)

    @property
    def interpret(self) -> dict:
        return self.config.get("interpret") or {"enabled": False}

    def interpret_runs(self, task: str) -> list[str]:
        """The runs explained on `task` (interpret.runs[task]): fine-tuning runs and one-hot
        CNN runs of that task; k-mer baselines have no positions to attribute."""
        if not self.interpret.get("enabled"):
            return []
        wanted = list((self.interpret.get("runs") or {}).get(task) or [])
        have = self.task_runs(task)
        bad = [r for r in wanted if r not in have or r.startswith("kmer")]
        if bad:
            runs = ", ".join(r for r in have if not r.startswith("kmer")) or "none"
            raise ConfigError(
                f"interpret.runs.{task}: {bad} are not fine-tuning or one-hot CNN runs of "
                f"{task} (runs: {runs})"
            )
        return wanted

    def interpret_tasks(self) -> list[str]:
        tasks = self.task_names()
        unknown = sorted(set(self.interpret.get("runs") or {}) - set(tasks))
        if self.interpret.get("enabled") and unknown:
            raise ConfigError(
                f"interpret.runs: {unknown} are not tasks of this configuration "
                f"(tasks: {', '.join(tasks) or 'none'})"
            )
        return [t for t in tasks if self.interpret_runs(t)]

    def interpret_settings(self) -> dict:
        """The settings dnalm.interpretation.run.InterpretSettings takes."""
        skip = {"enabled", "runs", "threads", "n_figure_windows"}
        return {k: v for k, v in self.interpret.items() if k not in skip}

    def interpret_run_inputs(self, wildcards) -> dict:
        folder = self.run_dir("finetune", wildcards.irun, wildcards.itask)
        return {
            "metrics": f"{folder}/metrics.json",
            "task": f"results/tasks/{wildcards.itask}/data.tsv",
        }

    def interpret_summaries(self, wildcards) -> list[str]:
        return [
            f"results/interpret/{wildcards.itask}/{run}/summary.tsv"
            for run in self.interpret_runs(wildcards.itask)
        ]

    def interpret_targets(self) -> list[str]:
        out = []
        for task in self.interpret_tasks():
            out += [
                f"results/interpret/{task}/summary.tsv",
                f"results/figures/interpret/{task}/summary.png",
            ]
            out += [
                f"results/figures/interpret/{task}/{run}/tracks.png"
                for run in self.interpret_runs(task)
            ]
        return out

    # ---- DNA and text (dnatext.smk)

    def dnatext_samples(self) -> list[str]:
        """Samples with CDS whose annotation text feeds the paired corpus."""
        return sorted(self.cds_samples)

    def dnatext_species(self) -> dict[str, str]:
        return {s: self.samples[s].species for s in self.dnatext_samples()}

    def dnatext_corpus_inputs(self, wildcards) -> dict:
        out = {}
        for s in self.dnatext_samples():
            out[f"{s}__table"] = f"results/cds/{s}.tsv"
            for split in ("train", "validation", "test"):
                out[f"{s}__{split}"] = f"results/splits/{s}/{split}.fa.gz"
        return out

    def dnatext_tokenizer_input(self) -> str:
        return f"results/tokenizers/{self.config['dnatext']['dna_tokenizer']}"

    def dnatext_probe_models(self) -> list[str]:
        """The dnatext-stage models the species probe embeds (rule dnatext_embed)."""
        dt = self.config["dnatext"]
        if not (dt["enabled"] and dt.get("probe", True)):
            return []
        return ["dna_basewise", "dna_table", "dnatext"]

    def dnatext_targets(self) -> list[str]:
        if not self.config["dnatext"]["enabled"]:
            return []
        return ["results/dnatext/evaluation.tsv"]

    # ---- the reproduction table (reproduce.smk)

    def reproduce_targets(self) -> list[str]:
        if not self.reproduce_rows:
            return []
        return ["results/reproduce/table.tsv", "results/reproduce/table.md"]

    def model_replicates(self, model: str) -> list[str]:
        """A pretrain.models entry's replicate names (X, X_seed{s}, ...), in seed order."""
        return [m for m in self.models if replicate_base(m) == model and m not in self.sweep_models]

    def reproduce_inputs(self, wildcards=None) -> dict:
        """Each row's sources: the metrics.json of a model's replicates, a task's comparison
        table, the probe table. A name the configuration lacks stops the run, naming the row.
        """
        files = {}
        for i, row in enumerate(self.reproduce_rows):
            where = f"reproduce.rows[{i}]"
            if row["source"] == "pretrain":
                if row["model"] not in (self.config["pretrain"]["models"] or {}):
                    raise ConfigError(
                        f"{where}.model: {row['model']!r} is not under pretrain.models"
                    )
                files[f"pretrain__{row['model']}"] = [
                    f"{self.run_dir('pretrain', m)}/metrics.json"
                    for m in self.model_replicates(row["model"])
                ]
            elif row["source"] == "finetune":
                tasks = self.task_names()
                if row["task"] not in tasks:
                    raise ConfigError(
                        f"{where}.task: {row['task']!r} is not a task of this configuration "
                        f"(tasks: {', '.join(tasks)})"
                    )
                entries = {replicate_base(r) for r in self.task_runs(row["task"])}
                if row["run"] not in entries:
                    raise ConfigError(
                        f"{where}.run: {row['run']!r} is not a run or baseline of task "
                        f"{row['task']} (entries: {', '.join(sorted(entries))})"
                    )
                files[f"comparison__{row['task']}"] = (
                    f"results/finetune/{row['task']}/comparison.tsv"
                )
            else:
                if not self.probe_enabled():
                    raise ConfigError(f"{where}: a probe row needs probe.enabled")
                files["probe"] = "results/probe/probe_table.tsv"
        return files

    # ---- model cards and provenance (rules pretrain_card and finetune_card)

    def model_samples(self, model: str) -> list[str]:
        """The samples a pretrained model's corpus was built from (none for a task corpus)."""
        return sorted(self.corpora[self.models[model]["corpus"]].get("samples") or [])

    def split_records(self, corpus: str) -> dict[str, str]:
        """The split files a model of `corpus` is traced to: the CDS split assignment and the
        leakage summary (when splits.leakage), or a window corpus's leakage table."""
        source = self.corpora[corpus]["source"]
        if source == "cds":
            out = {"assignment": "results/splits/assignment.tsv"}
            if self.config["splits"]["leakage"]:
                out["leakage"] = "results/splits/leakage_summary.tsv"
            return out
        if source in ("genome", "regions"):
            return {"leakage": f"results/windows/{corpus}/leakage.tsv"}
        return {}

    def split_seeds(self, corpus: str | None) -> dict[str, int | None]:
        """The seeds of the splits behind a model of `corpus` (None: none of ours): the CDS
        split seed, and a window or task corpus's own split seed."""
        out = {"splits": self.config["splits"].get("seed")}
        if corpus is not None:
            spec = self.corpora[corpus]
            split = spec.get("split") if isinstance(spec.get("split"), dict) else {}
            out["corpus_split"] = split.get("seed", spec.get("seed"))
        return out

    def finetune_corpus(self, run: str) -> str | None:
        """The corpus a fine-tuning run's pretrained model was trained on (None: external)."""
        model = self.runs[run]["model"]
        return self.models[model]["corpus"] if model in self.models else None

    def _source_records(self, samples) -> list[str]:
        return [f"{self.genome_dir(s)}/provenance.json" for s in sorted(set(samples))]

    def pretrain_card_inputs(self, wildcards) -> dict:
        """What the card and provenance of a pretrained model are made from."""
        folder = self.run_dir("pretrain", wildcards.model)
        corpus = self.models[wildcards.model]["corpus"]
        return {
            "metrics": f"{folder}/metrics.json",
            "run": f"{folder}/run.json",
            "config": f"{folder}/config.json",
            "sources": self._source_records(self.model_samples(wildcards.model)),
            **self.split_records(corpus),
        }

    def finetune_card_inputs(self, wildcards) -> dict:
        """What the card and provenance of a fine-tuned model folder are made from: its
        metrics, its task's comparison table, the task table, and its pretrained model's
        sources and splits (an external model has none of ours)."""
        task, run = wildcards.ftask, wildcards.run
        model = self.runs[run]["model"]
        folder = self.run_dir("finetune", run, task)
        samples = list(self.species_samples) if task == "species_fragments" else []
        out = {
            "metrics": f"{folder}/metrics.json",
            "comparison": f"results/finetune/{task}/comparison.tsv",
            "config": f"{folder}/model/config.json",
            "task": f"results/tasks/{task}/data.tsv",
        }
        if model in self.models:
            samples += self.model_samples(model)
            out.update(self.split_records(self.models[model]["corpus"]))
        if model in self.external:
            out["external"] = self.external_record(model)
        out["sources"] = self._source_records(samples)
        return out

    def finetune_base_model(self, run: str) -> str:
        """A fine-tuned model's base_model on its card: an external model's hub id, else the
        name of its entry (pretrain.models, or models.external for a local folder: a card
        names no machine path)."""
        model = self.runs[run]["model"]
        if model in self.external and not self.external[model].local:
            return str(self.external[model].source)
        return model

    def card_targets(self) -> list[str]:
        """The card (README.md) of every pretrained and fine-tuned model folder."""
        out = [f"{self.run_dir('pretrain', m)}/README.md" for m in sorted(self.models)]
        for run in sorted(self.runs):
            out += [
                f"{self.run_dir('finetune', run, t)}/model/README.md" for t in self.run_tasks(run)
            ]
        return out

    # ---- the run's targets (rule all)

    def targets(self) -> list[str]:
        """Every file of the run (rule all)."""
        targets = [
            "results/cds/qc_summary.tsv",
            "results/cds/qc.png",
            "results/splits/assignment.tsv",
            "results/splits/summary.tsv",
        ]
        if self.config["splits"]["leakage"]:
            targets += ["results/splits/leakage_summary.tsv", "results/figures/splits/leakage.png"]
        targets += self.corpus_targets()
        targets += [f"results/windows/{c}/leakage.tsv" for c in self.window_corpora]
        tasks = self.task_names()
        targets += [f"results/tasks/{t}/summary.tsv" for t in tasks]
        targets += [f"results/models/{m}/metrics.json" for m in sorted(self.models)]
        targets += [f"results/finetune/{t}/comparison.tsv" for t in tasks if self.task_runs(t)]
        targets += self.suite_targets()
        targets += self.card_targets()
        if self.probe_enabled() and self.embeddings():
            targets.append("results/probe/probe_table.tsv")
            targets += self.layer_probe_targets()
        targets += self.generation_targets()
        targets += self.genecomp_targets() + self.robustness_targets()
        targets += self.vep_targets() + self.analytics_targets()
        targets += self.reproduce_targets()
        targets += self.dnatext_targets()
        return targets + self.figure_targets() + self.sweep_targets() + self.interpret_targets()
