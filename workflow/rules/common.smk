# Sample sheet, config validation, input functions and wildcard constraints. No rules here.
import sys
from types import SimpleNamespace
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from dnalm.core.config import (  # noqa: E402
    check_config_keys,
    check_config_names,
    drop_null_entries,
    restore_training_settings,
    token_width,
    user_training_settings,
)
from dnalm.core.errors import DnalmError  # noqa: E402
from dnalm.genome.homology import check_split_settings  # noqa: E402
from dnalm.evaluation.probe_kinds import check_kinds  # noqa: E402
from dnalm.tasks.generated import check_generated_task  # noqa: E402
from dnalm.generation.sequences import prefix_length  # noqa: E402
from dnalm.genome.contigs import contig_names  # noqa: E402
from dnalm.genome.corpora import (  # noqa: E402
    check_contig_lists,
    check_task_corpora,
    check_window_fits,
    corpus_specs,
)
from dnalm.genome.samples import (  # noqa: E402
    expand_local,
    load_sample_sheet,
    load_schema as load_samples_schema,
    no_cds_message,
    reserved_sample_ids,
)
from dnalm.plan.records import SampleTable  # noqa: E402
from dnalm.plan.wildcards import alternatives, sample_constraint  # noqa: E402
from dnalm.core.seeds import (  # noqa: E402
    cnn_replicates,
    expand_models,
    expand_runs,
    replicate_base,
)
from dnalm.report.reproduce import check_rows  # noqa: E402
from dnalm.training.sweeps import expand_sweeps  # noqa: E402

# an entry set to null (in a later --configfile) is removed: merging cannot remove it
_DROPPED = drop_null_entries(config)
try:  # names that become paths, unknown settings and presets: clearer than the schema's
    check_config_names(config)
    check_config_keys(config)
    check_split_settings(config.get("splits"))
    corpus_specs(config, None)  # the corpora checks that need no sample sheet
except DnalmError as err:
    raise WorkflowError(str(err)) from None
# The schema fills in every default; the training settings stay as the config wrote them
# (the dataclasses of dnalm.core.config add the same defaults in the job), so that rule
# params, and with them Snakemake's rerun decisions, do not change with this check.
_USER_TRAINING_SETTINGS = user_training_settings(config)
validate(config, schema="../schemas/config.schema.yaml")
restore_training_settings(config, _USER_TRAINING_SETTINGS)

try:
    SAMPLE_LIST = load_sample_sheet(config["samples"])
except DnalmError as err:
    raise WorkflowError(str(err)) from None

SAMPLES = SampleTable(
    {s.sample: s for s in SAMPLE_LIST}, f"the sample sheet {config['samples']}"
)
# Samples with CDS (all but format fasta without annotate): CDS, QC, splits.
CDS_SAMPLES = [s.sample for s in SAMPLE_LIST if s.has_cds]
# PRETRAIN_SAMPLES feed the CDS corpus, so they are the pretraining samples with CDS;
# PRETRAIN_GENOME_SAMPLES (every pretraining sample with a genome sequence) feed genome corpora.
PRETRAIN_SAMPLES = [s.sample for s in SAMPLE_LIST if s.pretrain and s.has_cds]
PRETRAIN_GENOME_SAMPLES = [s.sample for s in SAMPLE_LIST if s.pretrain and s.has_genome]
SPECIES_SAMPLES = [s.sample for s in SAMPLE_LIST if s.species_task]


TOKENIZERS = dict(config["tokenizers"])
try:  # `seeds: [..]` entries become one entry per seed (dnalm.core.seeds)
    PRETRAIN_MODELS = expand_models(dict(config["pretrain"]["models"] or {}))
    FINETUNE_RUNS = expand_runs(
        dict(config["finetune"]["runs"] or {}), dict(config["pretrain"]["models"] or {})
    )
    CNN_RUNS = cnn_replicates(config["baselines"]["onehot_cnn"])
except DnalmError as err:
    raise WorkflowError(str(err)) from None
try:  # scaling sweeps: each grid point becomes a pretrain.models entry (sweep_{name}_...)
    SWEEPS = expand_sweeps(config, PRETRAIN_MODELS)
except DnalmError as err:
    raise WorkflowError(str(err)) from None
# sweep runs are pretrained and summarised, not fine-tuned or probed unless named there
SWEEP_MODELS = {p.model for points in SWEEPS.values() for p in points}
# further seed replicates (X_seed1, ...): fine-tuned where a run names them, not probed or
# sampled by default (the first replicate, under the entry's own name, is)
REPLICATE_MODELS = set(PRETRAIN_MODELS) - set(config["pretrain"]["models"] or {})
PRETRAIN_MODELS.update({p.model: p.spec for points in SWEEPS.values() for p in points})
for _name, _spec in PRETRAIN_MODELS.items():
    if _spec["tokenizer"] not in TOKENIZERS:
        raise WorkflowError(
            f"pretrain.models.{_name}: tokenizer {_spec['tokenizer']!r} is not defined under "
            f"`tokenizers` (defined: {', '.join(sorted(TOKENIZERS))})"
        )
try:  # corpora: sources, samples, windows and splits, checked before any job
    CORPORA = corpus_specs(config, SAMPLES)
    for _name, _spec in PRETRAIN_MODELS.items():
        _corpus = _spec.setdefault("corpus", "cds")
        if _corpus not in CORPORA:
            raise WorkflowError(
                f"pretrain.models.{_name}.corpus: {_corpus!r} is not defined under `corpora` "
                f"(defined: {', '.join(sorted(CORPORA))})"
            )
        check_window_fits(
            _corpus,
            CORPORA[_corpus],
            _spec["tokenizer"],
            TOKENIZERS[_spec["tokenizer"]],
            config["corpus"]["block_size"],
        )
except DnalmError as err:
    raise WorkflowError(str(err)) from None
WINDOW_CORPORA = sorted(
    c for c, s in CORPORA.items() if s["source"] in ("genome", "regions")
)
TASK_CORPORA = sorted(c for c, s in CORPORA.items() if s["source"] == "task")


def _genome_contigs(sample):
    """Contig names of a sample's genome file once it is on disk (local, or downloaded)."""
    s = SAMPLES[sample]
    if s.source_kind == "local":
        path = Path(expand_local(s.source))
    else:
        path = Path(f"resources/genomes/{sample}/primary")
    return contig_names(s.format, path, sample) if path.is_file() else None


try:  # held-out contigs must exist: checked now wherever the genome file is already here
    check_contig_lists(CORPORA, _genome_contigs)
except DnalmError as err:
    raise WorkflowError(str(err)) from None
_NO_CDS_PRETRAIN = [s.sample for s in SAMPLE_LIST if s.pretrain and not s.has_cds]
if _NO_CDS_PRETRAIN and any(s["source"] == "cds" for s in CORPORA.values()):
    from snakemake.logging import logger

    logger.info(
        f"CDS corpora: left out {', '.join(_NO_CDS_PRETRAIN)} (format fasta without "
        "annotate: no CDS; only genome corpora use them)"
    )
TASKS = config["tasks"]
SEQUENCE_TASKS = dict(TASKS["sequence_tasks"] or {})
for _name in SEQUENCE_TASKS:
    if _name in ("species_fragments", "tf_binding"):
        raise WorkflowError(
            f"tasks.sequence_tasks: the name {_name!r} is reserved; choose another task name"
        )


FINETUNE = config["finetune"]
for _name, _run in FINETUNE_RUNS.items():
    if _run["model"] not in PRETRAIN_MODELS:
        raise WorkflowError(
            f"finetune.runs.{_name}: model {_run['model']!r} is not defined under "
            f"pretrain.models (defined: {', '.join(sorted(PRETRAIN_MODELS)) or 'none'})"
        )
BASELINES = config["baselines"]
PROBE = config["probe"]
WALKS = config["walks"]


# the sheet's sample-ID pattern, not the list of samples (dnalm.plan.wildcards says why)
_SAMPLE_SCHEMA = load_samples_schema()
SAMPLE_CONSTRAINT = sample_constraint(
    _SAMPLE_SCHEMA["properties"]["sample"]["pattern"],
    reserved_sample_ids(_SAMPLE_SCHEMA),
)


wildcard_constraints:
    sample=SAMPLE_CONSTRAINT,
    split="train|validation|test",
    tok=alternatives(TOKENIZERS),
    corpus=alternatives(CORPORA),
    wcorpus=alternatives(WINDOW_CORPORA),
    tcorpus=alternatives(TASK_CORPORA),
    task=alternatives(SEQUENCE_TASKS),
    model=alternatives(PRETRAIN_MODELS),
    ftask=alternatives(["species_fragments", "tf_binding", *SEQUENCE_TASKS]),
    run=alternatives(FINETUNE_RUNS),
    cnn=alternatives(CNN_RUNS),
    sweep=alternatives(SWEEPS),
    k=r"\d+",
    eregime="pretrained|random-init|fine-tuned|external|dnatext",
    pkind="svm|mlp|hgb",
    ename=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    itask=alternatives(["species_fragments", "tf_binding", *SEQUENCE_TASKS]),
    irun=r"[^/]+",


def genome_dir(sample):
    return f"resources/genomes/{sample}"


def primary_input(wildcards):
    """The genome file of a sample: a local path used in place, else the download."""
    s = SAMPLES[wildcards.sample]
    if s.source_kind == "local":
        return str(expand_local(s.source))
    return f"{genome_dir(s.sample)}/primary"


def annotation_input(wildcards):
    s = SAMPLES[wildcards.sample]
    if not s.annotation:
        return []
    if s.annotation_kind == "local":
        return str(expand_local(s.annotation))
    return f"{genome_dir(s.sample)}/annotation"


def cds_inputs(wildcards):
    s = SAMPLES[wildcards.sample]
    if not s.has_cds:
        raise WorkflowError(no_cds_message(s, "do not ask for its CDS"))
    return {
        "primary": primary_input(wildcards),
        "annotation": annotation_input(wildcards),
        "provenance": f"{genome_dir(wildcards.sample)}/provenance.json",
    }


def genome_inputs(wildcards):
    """The genome file of a sample with a genome sequence (every format but cds_fasta)."""
    s = SAMPLES[wildcards.sample]
    if not s.has_genome:
        raise WorkflowError(
            f"sample {s.sample} has format cds_fasta: it has no genome, so no "
            f"results/genome/{s.sample}/ files; give its genome as gbff, fasta_gff or fasta"
        )
    return {
        "primary": primary_input(wildcards),
        "provenance": f"{genome_dir(s.sample)}/provenance.json",
    }


def feature_inputs(wildcards):
    """A sample's feature table is built from its genome's contig table and its annotation
    (GBFF, GFF3/GTF) or, with gene calling, its CDS table."""
    s = SAMPLES[wildcards.sample]
    files = genome_inputs(wildcards)
    files["contigs"] = f"results/genome/{s.sample}/contigs.tsv"
    if s.annotate:
        files["cds"] = f"results/cds/{s.sample}.tsv"
        del files["primary"]
    elif s.format == "fasta_gff":
        files["annotation"] = annotation_input(wildcards)
    elif s.format == "fasta":
        del files["primary"]
    return files


def split_cds_input(wildcards):
    """A sample's CDS, plus the clusters of all samples under splits.method: mmseqs."""
    inputs = {"cds": f"results/cds/{wildcards.sample}.fa.gz"}
    if config["splits"]["method"] == "mmseqs":
        inputs["clusters"] = "results/splits/clusters.tsv"
    return inputs


def pretrain_train_cfg(model):
    """Shared training settings with the model's own `train` entries on top."""
    return {
        **config["pretrain"]["train"],
        **(PRETRAIN_MODELS[model].get("train") or {}),
    }


def sample_data_group(name):
    """The job group of a cheap per-sample data rule: "sample_data" (on a cluster one
    submission runs a sample's chain, and profiles/slurm's group-components puts many
    samples into it), or None where grouping would make a cycle: split_cds under
    splits.method mmseqs needs cluster_cds, which needs every sample's extract_cds."""
    if name == "split_cds" and config["splits"]["method"] == "mmseqs":
        return None
    return "sample_data"


def pretrain_resource(key):
    """One SLURM resource of the pretraining job (None: not requested). One node: `gpu`
    (sbatch --gpus=G), as the other GPU rules. Several nodes: `nodes`, `gres` gpu:G (per
    node; --gpus would count the whole job), one task per node (`tasks` = nodes, with
    `tasks_per_gpu` 0 so the plugin adds no --ntasks-per-gpu) and `mpi` "srun", so the
    plugin runs the job's script on the first node without wrapping it in a 1-node srun: the
    rule itself starts one torchrun per node with srun (dnalm.training.distributed)."""
    nodes = int(config["pretrain"].get("nodes", 1))
    gpus = int(config["pretrain"]["gpus"])
    if nodes <= 1:
        res = {"gpu": gpus}
    else:
        res = {
            "nodes": nodes,
            "gres": f"gpu:{gpus}",
            "tasks": nodes,
            "tasks_per_gpu": 0,
            "mpi": "srun",
        }
    return res.get(key)


def tokenizer_spec(tok):
    return dict(TOKENIZERS[tok])


def tokenizer_training_input(wildcards):
    """BPE learns its merges from the pretraining samples' training split; fixed
    vocabularies need no input."""
    if TOKENIZERS[wildcards.tok]["type"] != "bpe":
        return []
    return expand("results/splits/{sample}/train.fa.gz", sample=PRETRAIN_SAMPLES)


def corpus_targets():
    """results/corpus/{corpus}/{tok}: every tokenizer on the `cds` corpus (as before
    corpora existed, when one is defined), and each model's corpus with its tokenizer.
    """
    pairs = set()
    if "cds" in CORPORA and CORPORA["cds"]["source"] == "cds":
        pairs |= {("cds", tok) for tok in TOKENIZERS}
    pairs |= {(s["corpus"], s["tokenizer"]) for s in PRETRAIN_MODELS.values()}
    return [f"results/corpus/{c}/{t}" for c, t in sorted(pairs)]


def corpus_build_settings(corpus):
    """corpus settings of one corpus: the shared `corpus` block, its own packing on top."""
    settings = dict(config["corpus"])
    if CORPORA[corpus].get("packing"):
        settings["packing"] = CORPORA[corpus]["packing"]
    return settings


def model_corpus(model):
    spec = PRETRAIN_MODELS[model]
    return f"results/corpus/{spec['corpus']}/{spec['tokenizer']}"


def corpus_split_inputs(wildcards):
    """The sequences a corpus is made of: CDS splits, or genome/region windows."""
    spec = CORPORA[wildcards.corpus]
    if spec["source"] == "cds":
        pattern = "results/splits/{sample}/{split}.fa.gz"
    elif spec["source"] == "task":
        return {
            split: [f"results/windows/{wildcards.corpus}/task/{split}.fa.gz"]
            for split in ("train", "validation", "test")
        }
    else:
        pattern = f"results/windows/{wildcards.corpus}/{{sample}}/{{split}}.fa.gz"
    return {
        split: expand(pattern, sample=spec["samples"], split=split)
        for split in ("train", "validation", "test")
    }


def window_tasks():
    """Task tables placed on a genome: task name -> are the ends of its windows inclusive
    (DNA-LLM window names: chr22_10510500_10510799 is 300 bp)."""
    if "tf_binding" not in task_names():
        return {}
    return {"tf_binding": TASKS["tf_binding"]["format"] == "dnallm"}


def window_task_inputs(corpus):
    return {f"task_{t}": f"results/tasks/{t}/data.tsv" for t in window_tasks()}


def genome_windows_inputs(wildcards):
    spec = CORPORA[wildcards.wcorpus]
    files = {
        "genome": f"results/genome/{wildcards.sample}/genome.fa.gz",
        **window_task_inputs(wildcards.wcorpus),
    }
    if spec["source"] == "regions":
        files["features"] = f"results/genome/{wildcards.sample}/features.tsv"
    files["beds"] = [_task_path(p) for p in spec["exclude_regions"]]
    return files


def window_leakage_inputs(wildcards):
    spec = CORPORA[wildcards.wcorpus]
    files = {
        key: expand(
            "results/windows/{corpus}/{sample}/{name}.tsv",
            corpus=wildcards.wcorpus,
            sample=spec["samples"],
            name=name,
        )
        for key, name in (
            ("summary", "windows"),
            ("contigs", "contigs"),
            ("overlaps", "overlaps"),
        )
    }
    files["beds"] = [_task_path(p) for p in spec["exclude_regions"]]
    return {**files, **window_task_inputs(wildcards.wcorpus)}


def _task_path(value):
    if value in (None, ""):
        return None
    return str(expand_local(value))


def tf_binding_inputs(wildcards):
    cfg = TASKS["tf_binding"]
    files = {"sequences": _task_path(cfg["sequences"])}
    for key in ("scores", "genome"):
        if cfg.get(key):
            files[key] = _task_path(cfg[key])
    return files


def generated_task(task):
    """The `generated` entry of a sequence task (TSTR / TRTS), checked, or None."""
    try:
        gen = check_generated_task(task, SEQUENCE_TASKS[task])
    except DnalmError as err:
        raise WorkflowError(str(err)) from None
    if gen is None:
        return None
    where = f"tasks.sequence_tasks.{task}.generated.model"
    model = gen["model"]
    if model not in PRETRAIN_MODELS or PRETRAIN_MODELS[model]["objective"] != "gpt":
        raise WorkflowError(
            f"{where}: {model!r} is not a causal (gpt) model under pretrain.models"
        )
    if generate_corpus(model)["source"] == "task":
        raise WorkflowError(
            f"{where}: {model!r} was trained on a task corpus, whose prompts have no species"
        )
    return gen


def generated_task_params(task):
    """What rule sequence_task needs of a generated set, or None. These are the role,
    keep_prompt, the prompt length (generate.prefix_nt in whole tokens, and whole codons on a
    CDS corpus, as the generation stage cuts it) and the species of each prompting test
    FASTA."""
    gen = generated_task(task)
    if gen is None:
        return None
    model = gen["model"]
    spec = generate_corpus(model)
    unit = token_width(TOKENIZERS[PRETRAIN_MODELS[model]["tokenizer"]])
    try:
        prompt_nt = prefix_length(GENERATE["prefix_nt"], unit, spec["source"] == "cds")
    except DnalmError as err:
        raise WorkflowError(str(err)) from None
    return {
        "role": gen["role"],
        "keep_prompt": bool(gen["keep_prompt"]),
        "prompt_nt": int(prompt_nt),
        "species": [SAMPLES[s].species for s in spec["samples"]],
    }


def sequence_task_inputs(wildcards):
    cfg = SEQUENCE_TASKS[wildcards.task]
    files = {}
    gen = generated_task(wildcards.task)
    if gen is not None:
        files["generated"] = f"results/generate/{gen['model']}/{gen['set']}.fa.gz"
        files["prompts"] = generate_splits(gen["model"])["test"]
    for key in ("table", "test_table"):
        if cfg.get(key):
            files[key] = _task_path(cfg[key])
    for key in ("fasta_by_class", "test_fasta_by_class"):
        for label, path in (cfg.get(key) or {}).items():
            files[f"{key}__{label}"] = _task_path(path)
    return files


def task_names():
    names = []
    if TASKS["species_fragments"]["enabled"] and SPECIES_SAMPLES:
        names.append("species_fragments")
    if TASKS["tf_binding"].get("sequences"):
        names.append("tf_binding")
    return names + sorted(SEQUENCE_TASKS)


try:  # a task corpus must name a task this configuration builds
    check_task_corpora(CORPORA, task_names())
except DnalmError as err:
    raise WorkflowError(str(err)) from None


def task_corpus_input(wildcards):
    """The task table a task corpus cuts its windows from."""
    return f"results/tasks/{CORPORA[wildcards.tcorpus]['task']}/data.tsv"


def task_kind(task):
    """classification | regression | per_base_regression, from the config alone."""
    if task == "species_fragments":
        return "classification"
    if task == "tf_binding":
        return "per_base_regression"
    return SEQUENCE_TASKS[task]["kind"]


def run_tasks(run):
    """The tasks a fine-tuning run trains on (its `tasks`, else every task)."""
    tasks = task_names()
    wanted = FINETUNE_RUNS[run].get("tasks")
    if wanted is None:
        return tasks
    unknown = sorted(set(wanted) - set(tasks))
    if unknown:
        raise WorkflowError(
            f"finetune.runs.{run}.tasks: {unknown} are not tasks of this configuration "
            f"(tasks: {', '.join(tasks) or 'none'})"
        )
    return list(wanted)


def task_runs(task):
    """Every result folder name under results/finetune/{task}: fine-tuning runs and
    baselines that apply to the task."""
    names = [r for r in sorted(FINETUNE_RUNS) if task in run_tasks(r)]
    if BASELINES["onehot_cnn"]["enabled"]:
        names += list(CNN_RUNS)
    if BASELINES["kmer"]["enabled"] and task_kind(task) != "per_base_regression":
        names += [f"kmer{k}" for k in BASELINES["kmer"]["k"]]
    return names


def finetune_settings(run, task):
    """Shared fine-tuning settings, then the task's, then the run's own."""
    spec = FINETUNE_RUNS[run]
    merged = {
        **FINETUNE["train"],
        **(FINETUNE["per_task"].get(task) or {}),
        **(spec.get("train") or {}),
    }
    for key in ("regime", "freeze_layers", "random_init", "pooling"):
        if key in spec:
            merged[key] = spec[key]
    return merged


def cnn_settings(task, name="onehot_cnn"):
    """The CNN's settings on `task`; a seed replicate's (`name`) with its seed."""
    cnn = BASELINES["onehot_cnn"]
    settings = {**cnn["train"], **(cnn["per_task"].get(task) or {})}
    if CNN_RUNS.get(name) is not None:
        settings["seed"] = CNN_RUNS[name]
    return settings


def run_dir(stage, name, task=None):
    """The folder of one run, the one place its path is built; scripts get it as a param
    (model_dir, out_dir) and never derive it from a file's parent. Stage "pretrain": the
    model folder of pretrain.models entry `name` (results/models/{name}); stage
    "finetune": run `name` on `task` (results/finetune/{task}/{name}), whose fine-tuned
    model folder is model/ inside it."""
    if stage == "pretrain":
        return f"results/models/{name}"
    if stage == "finetune":
        return f"results/finetune/{task}/{name}"
    raise WorkflowError(f"run_dir: unknown stage {stage!r}")


def model_files(model):
    folder = run_dir("pretrain", model)
    return {
        "config": f"{folder}/config.json",
        "weights": f"{folder}/model.safetensors",
        "run": f"{folder}/run.json",
    }


def finetune_inputs(wildcards):
    model = FINETUNE_RUNS[wildcards.run]["model"]
    return {
        **model_files(model),
        "tokenizer": f"results/tokenizers/{PRETRAIN_MODELS[model]['tokenizer']}",
        "task": f"results/tasks/{wildcards.ftask}/data.tsv",
    }


def finetune_results(wildcards):
    return expand(
        "results/finetune/{task}/{run}/metrics.json",
        task=wildcards.ftask,
        run=task_runs(wildcards.ftask),
    )


def probe_enabled():
    return PROBE["enabled"] and PROBE["task"] in task_names()


def probe_models():
    models = PROBE["models"]
    if models is None:  # every model but the sweeps' runs
        models = sorted(set(PRETRAIN_MODELS) - SWEEP_MODELS - REPLICATE_MODELS)
    models = list(models)
    unknown = sorted(set(models) - set(PRETRAIN_MODELS))
    if unknown:
        raise WorkflowError(f"probe.models: {unknown} are not under pretrain.models")
    return models


def probe_finetuned():
    runs = list(PROBE["finetuned"] or [])
    for r in runs:
        if r not in FINETUNE_RUNS:
            raise WorkflowError(f"probe.finetuned: {r!r} is not under finetune.runs")
        if PROBE["task"] not in run_tasks(r):
            raise WorkflowError(
                f"probe.finetuned: run {r!r} does not train on the probe task "
                f"{PROBE['task']!r}; add it to the run's tasks"
            )
    return runs


def embeddings():
    """(regime, name) of every embedded model."""
    out = [("pretrained", m) for m in probe_models()]
    if PROBE["random_init"]:
        out += [("random-init", m) for m in probe_models()]
    out += [("fine-tuned", r) for r in probe_finetuned()]
    out += [("external", e) for e in sorted(PROBE["external"] or {})]
    out += [("dnatext", m) for m in dnatext_probe_models()]
    return out


def embed_inputs(wildcards):
    task = f"results/tasks/{PROBE['task']}/data.tsv"
    regime, name = wildcards.eregime, wildcards.ename
    if regime in ("pretrained", "random-init"):
        if name not in PRETRAIN_MODELS:
            raise WorkflowError(f"no pretrained model {name!r}")
        return {**model_files(name), "task": task}
    if regime == "fine-tuned":
        return {
            "metrics": f"{run_dir('finetune', name, PROBE['task'])}/metrics.json",
            "task": task,
        }
    return {"task": task}


def embed_model_dir(wildcards):
    """The model folder (or, for an external model, the folder or hub id) to embed with."""
    regime, name = wildcards.eregime, wildcards.ename
    if regime in ("pretrained", "random-init"):
        return run_dir("pretrain", name)
    if regime == "fine-tuned":
        return f"{run_dir('finetune', name, PROBE['task'])}/model"
    return PROBE["external"][name]["model"]


def probe_kinds():
    """probe.kinds, checked (logreg first, then the other kinds)."""
    try:
        return check_kinds(PROBE["kinds"])
    except DnalmError as err:
        raise WorkflowError(str(err)) from None


def probe_metric_files():
    """Metrics of every probe row: logreg under results/probe/metrics/{regime}/, every other
    kind of probe.kinds under results/probe/metrics/{kind}/{regime}/."""
    rows = [f"{r}/{n}" for r, n in embeddings()]
    rows.append(f"kmer-baseline/kmer{PROBE['kmer_k']}")
    files = []
    for kind in probe_kinds():
        prefix = "" if kind == "logreg" else f"{kind}/"
        files += [f"results/probe/metrics/{prefix}{row}.json" for row in rows]
    return files


def walk_samples():
    """Samples whose held-out CDS are drawn as walks and CGR images: every sample with CDS."""
    return sorted(CDS_SAMPLES) if WALKS["enabled"] else []


def walk_generated_models():
    """Causal models whose generated sequences are compared with natural ones: those of the
    generation stage (generate.smk), when both it and walks.generated are on."""
    if not (WALKS["enabled"] and WALKS["generated"]) or not generate_enabled():
        return []
    return sorted(generate_models())


def walk_targets():
    figs = []
    if walk_samples():
        figs += ["results/figures/walks/walks.png", "results/figures/walks/cgr.png"]
    if walk_generated_models():
        figs += [
            "results/figures/walks/generated_cgr.png",
            "results/figures/walks/generated_umap.png",
        ]
    return figs


def pretrain_figure_models():
    """The models of the pretraining table and figures: all but the sweeps' runs (their
    own table and figure are under results/sweeps/)."""
    return sorted(set(PRETRAIN_MODELS) - SWEEP_MODELS)


def sweep_points(sweep):
    """The runs of a sweep as plain records (sweep, model, size, budget, tokens, seed)."""
    keys = ("sweep", "model", "size", "budget", "tokens", "seed")
    return [{k: getattr(p, k) for k in keys} for p in SWEEPS[sweep]]


def sweep_fit(sweep):
    """The fit settings of a sweep: form (loglog | offset) and points (frontier | all)."""
    return {
        "form": "loglog",
        "points": "frontier",
        **(config["sweeps"][sweep].get("fit") or {}),
    }


def sweep_targets():
    return expand(
        [
            "results/sweeps/{sweep}/summary.tsv",
            "results/sweeps/{sweep}/fit.tsv",
            "results/figures/sweeps/{sweep}/scaling.png",
        ],
        sweep=sorted(SWEEPS),
    )


def figure_targets():
    figs = walk_targets()
    if pretrain_figure_models():
        figs += [
            "results/figures/pretrain/curves.png",
            "results/figures/pretrain/time.png",
        ]
    for task in task_names():
        if task_runs(task):
            figs += expand(
                "results/figures/finetune/{task}/{fig}.png",
                task=task,
                fig=["performance", "time", "curves"],
            )
            if task_kind(task) == "classification":
                figs.append(f"results/figures/finetune/{task}/calibration.png")
            if task_kind(task) == "per_base_regression" and any(
                r not in CNN_RUNS and not r.startswith("kmer") for r in task_runs(task)
            ):
                figs.append(f"results/figures/finetune/{task}/tracks.png")
    if probe_enabled() and embeddings():
        figs.append("results/figures/probe/probe_accuracy.png")
        figs.append("results/figures/probe/calibration.png")
        figs += [f"results/figures/probe/umap/{r}/{n}.png" for r, n in embeddings()]
        figs += [
            f"results/figures/probe/confusion/{r}/{n}.png" for r, n in embeddings()
        ]
        figs += [
            f"results/figures/probe/umap_before_after/{r}.png"
            for r in probe_finetuned()
        ]
    return figs


# ---- attribution and motifs (interpret.smk)

INTERPRET = config.get("interpret") or {"enabled": False}


def interpret_runs(task):
    """The runs explained on `task` (interpret.runs[task]): fine-tuning runs and one-hot
    CNN runs of that task; k-mer baselines have no positions to attribute."""
    if not INTERPRET.get("enabled"):
        return []
    wanted = list((INTERPRET.get("runs") or {}).get(task) or [])
    have = task_runs(task)
    bad = [r for r in wanted if r not in have or r.startswith("kmer")]
    if bad:
        raise WorkflowError(
            f"interpret.runs.{task}: {bad} are not fine-tuning or one-hot CNN runs of "
            f"{task} (runs: {', '.join(r for r in have if not r.startswith('kmer')) or 'none'})"
        )
    return wanted


def interpret_tasks():
    tasks = task_names()
    unknown = sorted(set(INTERPRET.get("runs") or {}) - set(tasks))
    if INTERPRET.get("enabled") and unknown:
        raise WorkflowError(
            f"interpret.runs: {unknown} are not tasks of this configuration "
            f"(tasks: {', '.join(tasks) or 'none'})"
        )
    return [t for t in tasks if interpret_runs(t)]


def interpret_settings():
    """The settings dnalm.interpretation.run.InterpretSettings takes."""
    skip = {"enabled", "runs", "threads", "n_figure_windows"}
    return {k: v for k, v in INTERPRET.items() if k not in skip}


def interpret_run_inputs(wildcards):
    folder = run_dir("finetune", wildcards.irun, wildcards.itask)
    return {
        "metrics": f"{folder}/metrics.json",
        "task": f"results/tasks/{wildcards.itask}/data.tsv",
    }


def interpret_summaries(wildcards):
    return expand(
        "results/interpret/{task}/{run}/summary.tsv",
        task=wildcards.itask,
        run=interpret_runs(wildcards.itask),
    )


def interpret_targets():
    out = []
    for task in interpret_tasks():
        out += [
            f"results/interpret/{task}/summary.tsv",
            f"results/figures/interpret/{task}/summary.png",
        ]
        out += [
            f"results/figures/interpret/{task}/{run}/tracks.png"
            for run in interpret_runs(task)
        ]
    return out


def all_targets():
    targets = [
        "results/cds/qc_summary.tsv",
        "results/cds/qc.png",
        "results/splits/assignment.tsv",
        "results/splits/summary.tsv",
    ]
    if config["splits"]["leakage"]:
        targets += [
            "results/splits/leakage_summary.tsv",
            "results/figures/splits/leakage.png",
        ]
    targets += corpus_targets()
    targets += expand("results/windows/{corpus}/leakage.tsv", corpus=WINDOW_CORPORA)
    targets += expand("results/tasks/{task}/summary.tsv", task=task_names())
    targets += expand(
        "results/models/{model}/metrics.json", model=sorted(PRETRAIN_MODELS)
    )
    targets += [
        f"results/finetune/{task}/comparison.tsv"
        for task in task_names()
        if task_runs(task)
    ]
    if probe_enabled() and embeddings():
        targets.append("results/probe/probe_table.tsv")
    targets += generation_targets()  # rules/generate.smk
    targets += vep_targets()  # rules/vep.smk
    targets += reproduce_targets()
    targets += dnatext_targets()
    return targets + figure_targets() + sweep_targets() + interpret_targets()


# ---- DNA and text (dnatext.smk)


def dnatext_samples():
    """Samples with CDS whose annotation text feeds the paired corpus."""
    return sorted(CDS_SAMPLES)


def dnatext_species():
    return {s: SAMPLES[s].species for s in dnatext_samples()}


def dnatext_corpus_inputs(wildcards):
    out = {}
    for s in dnatext_samples():
        out[f"{s}__table"] = f"results/cds/{s}.tsv"
        for split in ("train", "validation", "test"):
            out[f"{s}__{split}"] = f"results/splits/{s}/{split}.fa.gz"
    return out


def dnatext_tokenizer_input():
    return f"results/tokenizers/{config['dnatext']['dna_tokenizer']}"


def dnatext_probe_models():
    """The dnatext-stage models the species probe embeds (rule dnatext_embed)."""
    dt = config["dnatext"]
    if not (dt["enabled"] and dt.get("probe", True)):
        return []
    return ["dna_basewise", "dna_table", "dnatext"]


def dnatext_targets():
    if not config["dnatext"]["enabled"]:
        return []
    return ["results/dnatext/evaluation.tsv"]


# ---- the reproduction table (reproduce.smk)

try:
    REPRODUCE_ROWS = check_rows((config.get("reproduce") or {}).get("rows"))
except DnalmError as err:
    raise WorkflowError(str(err)) from None


def reproduce_targets():
    if not REPRODUCE_ROWS:
        return []
    return ["results/reproduce/table.tsv", "results/reproduce/table.md"]


def model_replicates(model):
    """A pretrain.models entry's replicate names (X, X_seed{s}, ...), in seed order."""
    return [
        m
        for m in PRETRAIN_MODELS
        if replicate_base(m) == model and m not in SWEEP_MODELS
    ]


def reproduce_inputs(wildcards):
    """Each row's sources: the metrics.json of a model's replicates, a task's comparison
    table, the probe table. A name the configuration lacks stops the run, naming the row.
    """
    files = {}
    for i, row in enumerate(REPRODUCE_ROWS):
        where = f"reproduce.rows[{i}]"
        if row["source"] == "pretrain":
            if row["model"] not in (config["pretrain"]["models"] or {}):
                raise WorkflowError(
                    f"{where}.model: {row['model']!r} is not under pretrain.models"
                )
            files[f"pretrain__{row['model']}"] = [
                f"{run_dir('pretrain', m)}/metrics.json"
                for m in model_replicates(row["model"])
            ]
        elif row["source"] == "finetune":
            if row["task"] not in task_names():
                raise WorkflowError(
                    f"{where}.task: {row['task']!r} is not a task of this configuration "
                    f"(tasks: {', '.join(task_names())})"
                )
            entries = {replicate_base(r) for r in task_runs(row["task"])}
            if row["run"] not in entries:
                raise WorkflowError(
                    f"{where}.run: {row['run']!r} is not a run or baseline of task "
                    f"{row['task']} (entries: {', '.join(sorted(entries))})"
                )
            files[f"comparison__{row['task']}"] = (
                f"results/finetune/{row['task']}/comparison.tsv"
            )
        else:
            if not probe_enabled():
                raise WorkflowError(f"{where}: a probe row needs probe.enabled")
            files["probe"] = "results/probe/probe_table.tsv"
    return files


# ---- generation stage (generate.smk)

GENERATE = config["generate"]


def generate_models():
    """Causal models to sample from (generate.models, default every gpt model)."""
    causal = [
        m
        for m, s in PRETRAIN_MODELS.items()
        if s["objective"] == "gpt"
        and m not in SWEEP_MODELS  # sweeps: their own summary
        and m not in REPLICATE_MODELS
    ]
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


# ----------------------------------------------------------------------------- vep.smk

VEP = config["vep"]


def vep_sample():
    """The sample whose held-out CDS carry the simulated SNVs (vep.sample, default the
    first CDS sample)."""
    sample = VEP["sample"] or (CDS_SAMPLES[0] if CDS_SAMPLES else None)
    if sample is not None and sample not in CDS_SAMPLES:
        raise WorkflowError(
            f"vep.sample: {sample!r} is not a sample with CDS "
            f"(samples with CDS: {', '.join(CDS_SAMPLES) or 'none'})"
        )
    return sample


def vep_models():
    """Models to score with (vep.models, default every pretrain model that is not a
    sweep's or a replicate's run)."""
    default = [
        m
        for m in PRETRAIN_MODELS
        if m not in SWEEP_MODELS and m not in REPLICATE_MODELS
    ]
    models = default if VEP["models"] is None else list(VEP["models"])
    for m in models:
        if m not in PRETRAIN_MODELS:
            raise WorkflowError(
                f"vep.models: {m!r} is not under pretrain.models "
                f"(defined: {', '.join(sorted(PRETRAIN_MODELS)) or 'none'})"
            )
    return models


def vep_simulate_inputs(wildcards):
    """The sample's held-out CDS (test split), its training split (baselines) and the CDS
    table (genetic code per CDS)."""
    return {
        "test": [f"results/splits/{wildcards.sample}/test.fa.gz"],
        "train": [f"results/splits/{wildcards.sample}/train.fa.gz"],
        "cds_table": f"results/cds/{wildcards.sample}.tsv",
    }


def vep_score_inputs(wildcards):
    return {
        **model_files(wildcards.model),
        "vcf": f"results/vep/{wildcards.sample}/variants.vcf",
        "fasta": f"results/splits/{wildcards.sample}/test.fa.gz",
    }


def vep_targets():
    if not VEP["enabled"] or not vep_models() or vep_sample() is None:
        return []
    sample = vep_sample()
    return [
        f"results/vep/{sample}/auroc.tsv",
        f"results/figures/vep/{sample}_auroc.png",
    ]
