"""dnalm.plan: the validated config and sample sheet as typed records, without Snakemake."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from dnalm.core.errors import ConfigError, DnalmError, SampleSheetError
from dnalm.genome.samples import load_schema, reserved_sample_ids
from dnalm.plan import Plan, load
from dnalm.plan.plan import SPLITS_TABLE, wildcards
from dnalm.plan.records import SampleTable
from dnalm.plan.wildcards import alternatives, sample_constraint
from tests.support.workflow_runner import demo_config

REPO = Path(__file__).resolve().parents[1]
SCHEMA = load_schema()
SAMPLE_RE = sample_constraint(
    SCHEMA["properties"]["sample"]["pattern"], reserved_sample_ids(SCHEMA)
)


def matches(pattern: str, path: str) -> dict | None:
    """The wildcards of `path` against `pattern` ({name} = the constraint), as Snakemake."""
    regex = re.escape(pattern).replace(r"\{sample\}", f"(?P<sample>{SAMPLE_RE})")
    m = re.match(regex + "$", path)
    return m.groupdict() if m else None


@pytest.mark.parametrize(
    ("path", "sample"),
    [
        ("results/cds/ecoli.tsv", "ecoli"),
        ("results/cds/qc_summary2.tsv", "qc_summary2"),
        ("results/cds/qc.final.tsv", "qc.final"),
        ("results/cds/E_coli-K12.v2.fa.gz", "E_coli-K12.v2"),
        ("results/cds/qc_summary.tsv", None),  # rule cds_qc's file, not a sample's
        ("results/cds/a/b.tsv", None),
        ("results/cds/.hidden.tsv", None),
    ],
)
def test_sample_constraint_keeps_the_workflow_files_out(path, sample):
    got = matches("results/cds/{sample}.tsv", path) or matches("results/cds/{sample}.fa.gz", path)
    assert (got or {}).get("sample") == sample


def test_sample_constraint_does_not_grow_with_the_samples():
    """A list of sample names would be copied into every output pattern (O(samples) per
    job); the constraint is the fixed-length ID pattern."""
    assert len(SAMPLE_RE) < 200


def test_alternatives_match_exactly_the_names():
    pattern = alternatives(["a.b", "c"])
    assert re.fullmatch(pattern, "a.b")
    assert re.fullmatch(pattern, "c")
    assert not re.fullmatch(pattern, "axb")
    assert not re.fullmatch(alternatives([]), "")


def test_unknown_sample_is_named_with_the_sheet():
    table = SampleTable({"ecoli": 1}, "the sample sheet s.tsv")
    assert table["ecoli"] == 1
    with pytest.raises(ConfigError, match=r"'nosuch' is not in the sample sheet s.tsv.*ecoli"):
        table["nosuch"]


# --------------------------------------------------------------------------- load()


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)  # relative paths of the configs are from the repository root


def test_cnn_seed_replicates_on_the_named_tasks_only():
    """baselines.onehot_cnn.seed_tasks: the second seed trains on those tasks; elsewhere one
    folder of the first seed; an unknown task is named at load."""
    seeds = {"seeds": [0, 1], "seed_tasks": ["species_fragments"]}
    plan = load(demo_config(baselines={"onehot_cnn": seeds}))
    assert [r for r in plan.task_runs("species_fragments") if "cnn" in r] == [
        "onehot_cnn",
        "onehot_cnn_seed1",
    ]
    for task in ("tf_binding", "oct4_vs_mafk"):
        assert [r for r in plan.task_runs(task) if "cnn" in r] == ["onehot_cnn"]
    inputs = plan.finetune_results(wildcards(ftask="species_fragments"))
    assert "results/finetune/species_fragments/onehot_cnn_seed1/metrics.json" in inputs
    inputs = plan.finetune_results(wildcards(ftask="tf_binding"))
    assert not [p for p in inputs if "onehot_cnn_seed" in p]
    plan = load(demo_config(baselines={"onehot_cnn": {"seeds": [0, 1]}}))
    assert "onehot_cnn_seed1" in plan.task_runs("tf_binding")
    with pytest.raises(ConfigError, match=r"baselines\.onehot_cnn\.seed_tasks: \['nosuch'\]"):
        load(demo_config(baselines={"onehot_cnn": {"seeds": [0, 1], "seed_tasks": ["nosuch"]}}))


def test_demo_plan():
    plan = load(demo_config())
    assert isinstance(plan, Plan)
    assert "mgallisepticum" in plan.cds_samples
    assert {"gpt_nucleotide", "gpt_codon", "mlm_kmer6", "mlm_bpe"} <= set(plan.models)
    assert set(plan.sweep_models) == {m for m in plan.models if m.startswith("sweep_tiny_gpt_")}
    assert plan.task_names() == ["species_fragments", "tf_binding", "oct4_vs_mafk"]
    assert plan.run_tasks("gpt_codon_frozen") == ["tf_binding"]
    assert "results/probe/probe_table.tsv" in plan.targets()
    assert plan.generate_models() == ["gpt_nucleotide", "gpt_codon"]
    assert plan.cds_inputs(wildcards(sample="mgallisepticum"))["provenance"] == (
        "resources/genomes/mgallisepticum/provenance.json"
    )
    # verify_sources' one input function: the genome file, no annotation for a GBFF
    sources = plan.source_inputs(wildcards(sample="mgallisepticum"))
    assert sources == {
        "primary": str(REPO / "tests/data/genbank/Mgallisepticum.gbff.gz"),
        "annotation": [],
    }


def test_schema_defaults_are_filled_but_not_in_the_training_settings():
    """The schema fills in its defaults; the training settings keep what the config wrote,
    so rule params (and Snakemake's rerun decisions) do not change with the validation."""
    config = demo_config()
    written = dict(config["pretrain"]["train"])
    plan = load(config)
    assert plan.config["pretrain"]["train"] == written
    assert plan.config["splits"]["mmseqs"]["min_identity"] == 0.8  # a schema default


def test_pretraining_settings_are_checked_by_the_plan():
    """Rule pretrain's params.train (the shared settings with a model's own on top) is
    checked once at DAG build, so the job only adds the defaults: a value the settings'
    dataclass refuses stops Plan.check and names the config path."""
    plan = load(demo_config(pretrain={"models": {"gpt_codon": {"train": {"lr": 0.01}}}}))
    assert plan.pretrain_train_cfg("gpt_codon")["lr"] == 0.01
    plan.models["gpt_codon"]["train"]["lowercase_loss_weight"] = 1.5
    with pytest.raises(
        ConfigError,
        match=r"^pretrain\.models\.gpt_codon\.train \(on top of pretrain\.train\): "
        r"pretrain\.train\.lowercase_loss_weight must be a number in \[0, 1\], got 1\.5",
    ):
        plan.check()
    plan.models["gpt_codon"]["train"]["lowercase_loss_weight"] = 0.5
    plan.config["pretrain"]["train"]["checkpoint_interval"] = 0
    with pytest.raises(ConfigError, match=r"^pretrain\.train: .*checkpoint_interval"):
        plan.check()


def test_null_entries_are_dropped():
    plan = load(
        demo_config(
            pretrain={"models": {"mlm_bpe": None}}, finetune={"runs": {"mlm_bpe_lora": None}}
        )
    )
    assert "mlm_bpe" not in plan.models
    assert plan.dropped == ["pretrain.models.mlm_bpe", "finetune.runs.mlm_bpe_lora"]


def test_task_files_given_as_urls_are_downloaded_by_a_rule():
    """A task file given as a URL is the input of the rule download_task_file (its path is
    known without the network); the checksum after '#' goes with it; a malformed checksum
    stops load() naming the key and the fix."""
    base = "https://example.org/data/chr22_sequences.txt.gz"
    digest = "a" * 64
    plan = load(demo_config(tasks={"tf_binding": {"sequences": f"{base}#sha256={digest}"}}))
    path = plan.tf_binding_inputs(wildcards())["sequences"]
    folder, name = path.rsplit("/", 1)
    assert name == "chr22_sequences.txt.gz"
    assert folder.startswith("resources/task_files/")
    spec = plan.task_file(wildcards(taskfile=folder.rsplit("/", 1)[1]))
    assert (spec.url, spec.sha256, spec.md5) == (base, digest, None)
    assert spec.where == "tasks.tf_binding.sequences"
    assert spec.path == path
    # local paths stay local
    assert plan.tf_binding_inputs(wildcards())["scores"].endswith(
        "tests/data/tasks/tf_binding/chr22_scores.txt.gz"
    )
    with pytest.raises(DnalmError, match=r"tasks\.tf_binding\.scores: .*#sha256=<64 hex"):
        load(demo_config(tasks={"tf_binding": {"scores": f"{base}#sha256=abc"}}))


ROW = {"paper": "P", "metric": "M", "published": 0.5}
BAD_CONFIGS = {
    "path-like name": (
        {"tasks": {"sequence_tasks": {"../ESCAPED": {"kind": "classification"}}}},
        "config key tasks.sequence_tasks: the name '../ESCAPED' is not allowed",
    ),
    "unknown training setting": (
        {"pretrain": {"train": {"max_stepz": 3}}},
        r"pretrain\.train: .*max_stepz",
    ),
    "schema": ({"splits": {"seed": "x"}}, r"Error validating config file\.\n'x' is not of type"),
    "missing sheet": ({"samples": "no/such.tsv"}, r"sample sheet no/such.tsv not found"),
    "model tokenizer": (
        {
            "pretrain": {
                "models": {"m": {"objective": "gpt", "tokenizer": "nope", "preset": "tiny"}}
            }
        },
        r"pretrain\.models\.m: tokenizer 'nope' is not defined under `tokenizers`",
    ),
    "model corpus": (
        {"pretrain": {"models": {"mlm_bpe": {"corpus": "nope"}}}},
        r"pretrain\.models\.mlm_bpe\.corpus: 'nope' is not defined under `corpora`",
    ),
    "run model": (
        {"finetune": {"runs": {"r": {"model": "nope", "regime": "frozen"}}}},
        r"finetune\.runs\.r: model 'nope' is not defined under pretrain\.models",
    ),
    "run tasks": (
        {"finetune": {"runs": {"mlm_bpe_lora": {"tasks": ["nope"]}}}},
        r"finetune\.runs\.mlm_bpe_lora\.tasks: \['nope'\] are not tasks of this configuration",
    ),
    "probe models": (
        {"probe": {"models": ["nope"]}},
        r"probe\.models: \['nope'\] are not under pretrain\.models",
    ),
    "probe finetuned": (
        {"probe": {"finetuned": ["nope"]}},
        r"probe\.finetuned: 'nope' is not under finetune\.runs",
    ),
    "probe finetuned task": (
        {"probe": {"finetuned": ["gpt_codon_frozen"]}},
        r"probe\.finetuned: run 'gpt_codon_frozen' does not train on the probe task",
    ),
    "probe kinds": ({"probe": {"kinds": ["logreg", "forest"]}}, "'forest' is not one of"),
    "cls pooling of a causal model": (
        {
            "probe": {
                "models": ["gpt_nucleotide"],
                "pooling": "cls",
                "layers": "last",
                "layer_models": None,
            }
        },
        r"probe\.pooling: 'cls' pools the first token, and gpt_nucleotide \(pretrained\) is a "
        "causal model",
    ),
    "cls pooling of a layer-probed causal model": (
        {
            "probe": {
                "models": ["gpt_nucleotide", "mlm_kmer6"],
                "layers": "all",
                "pooling": ["mean", "cls"],
                "layer_models": None,  # every probed model (the demo's: mlm_kmer6 alone)
            }
        },
        r"probe\.pooling: 'cls' .* gpt_nucleotide \(pretrained\) is a causal model",
    ),
    "cls pooling of an external causal model": (
        {
            "models": {"external": {"hyena": {"source": "org/hyena", "objective": "gpt"}}},
            "probe": {"external": {"hy": {"model": "hyena", "pooling": "cls"}}},
        },
        r"probe\.external\.hy\.pooling: 'cls' .* hy \(external\) is a causal model",
    ),
    "cls pooling of a layer-probed external causal model": (
        {
            "models": {"external": {"hyena": {"source": "org/hyena", "objective": "gpt"}}},
            "probe": {
                "external": {"hy": {"model": "hyena"}},
                "layers": "all",
                "pooling": ["mean", "cls"],
                "layer_models": ["hy"],
            },
        },
        r"probe\.pooling: 'cls' .* hy \(external\) is a causal model",
    ),
    "cls pooling of a layer-probed external causal model with its own pooling": (
        {
            "models": {"external": {"hyena": {"source": "org/hyena", "objective": "gpt"}}},
            "probe": {
                "external": {"hy": {"model": "hyena", "pooling": "last"}},
                "layers": "all",
                "pooling": ["mean", "cls"],
                "layer_models": ["hy"],
            },
        },
        r"^probe\.pooling: 'cls' .* hy \(external\) .* or leave it out of probe\.layer_models",
    ),
    "layer models not embedded": (
        {"probe": {"layers": [0, 1], "layer_models": ["gpt_codon"]}},
        r"probe\.layer_models: \['gpt_codon'\] are not embedded by the probe \(embedded: "
        r"mlm_kmer6, mlm_kmer6_partial\)",
    ),
    "layer models with the layer probe off": (
        {"probe": {"layer_models": ["mlm_kmer6"], "layers": "last", "pooling": "mean"}},
        r"probe\.layer_models: the layer probe is off \(probe\.layers is last",
    ),
    "layers not a list or word": ({"probe": {"layers": "first"}}, "Error validating config"),
    "generate masked model": (
        {"generate": {"models": ["mlm_kmer6"]}},
        r"generate\.models: 'mlm_kmer6' is a masked \(mlm\) model",
    ),
    "generate reference": (
        {"generate": {"reference_model": "nope"}},
        r"generate\.reference_model: 'nope' is not under pretrain\.models",
    ),
    "vep sample": (
        {"vep": {"enabled": True, "sample": "nope"}},
        r"vep\.sample: 'nope' is not a sample with CDS",
    ),
    "vep models": (
        {"vep": {"enabled": True, "models": ["nope"]}},
        r"vep\.models: 'nope' is not under pretrain\.models",
    ),
    "interpret task": (
        {"interpret": {"enabled": True, "runs": {"nope": ["gpt_nucleotide_frozen"]}}},
        r"interpret\.runs: \['nope'\] are not tasks of this configuration",
    ),
    "interpret run": (
        {"interpret": {"enabled": True, "runs": {"tf_binding": ["kmer4"]}}},
        r"interpret\.runs\.tf_binding: \['kmer4'\] are not fine-tuning or one-hot CNN runs",
    ),
    "reproduce model": (
        {"reproduce": {"rows": [{**ROW, "source": "pretrain", "model": "nope"}]}},
        r"reproduce\.rows\[0\]\.model: 'nope' is not under pretrain\.models",
    ),
    "reproduce probe row": (
        {
            "probe": {"enabled": False},
            "reproduce": {"rows": [{**ROW, "source": "probe", "model": "mlm_kmer6"}]},
        },
        r"reproduce\.rows\[0\]: a probe row needs probe\.enabled",
    ),
    "seeds": (
        {"pretrain": {"models": {"gpt_codon": {"seeds": [1, 1]}}}},
        r"\[1, 1\] has non-unique elements",
    ),
    "kmer k": (
        {"tokenizers": {"kmer6": {"type": "kmer", "k": 9}}},
        r"tokenizers\.kmer6: tokenizer spec .*: k must be an integer in \[1, 7\]",
    ),
    "bpe vocab_size": (
        {"tokenizers": {"bpe": {"type": "bpe", "vocab_size": 5}}},
        r"tokenizers\.bpe: tokenizer spec .*: vocab_size must be an integer in \[11, 65535\]",
    ),
    "split fractions": (
        {"splits": {"fractions": {"train": 0.8, "validation": 0.3, "test": 0.1}}},
        r"splits\.fractions: .* sum to 1\.2; .*sum to 1",
    ),
    "task fractions": (
        {"tasks": {"tf_binding": {"fractions": {"train": 0.5, "validation": 0.1, "test": 0.1}}}},
        r"tasks\.tf_binding\.fractions: .* sum to 0\.7",
    ),
    "block_size over context": (
        {"corpus": {"block_size": 1024}, "sweeps": {"tiny_gpt": None}},
        r"pretrain\.models\.gpt_nucleotide: corpus\.block_size 1024 .* longer than preset "
        r"gpt/tiny's context \(512 positions\); set corpus\.block_size <= 512, or the "
        r"model's overrides\.context >= 1024",
    ),
    "corpus window": (
        {
            "corpora": {"long": {"source": "genome", "samples": ["spyogenes"], "window": 2000}},
            "pretrain": {"models": {"gpt_nucleotide": {"corpus": "long"}}},
        },
        r"corpora\.long\.window: a window of 2000 nt is 2000 nucleotide tokens",
    ),
}


def _demo_sheet(tmp_path: Path, **set_cells) -> Path:
    """The demo sheet at tmp_path/samples.tsv with its paths made absolute and, per column
    named in `set_cells`, the cell replaced by `value(sample ID, cell)`."""
    lines = (REPO / "tests/config/demo_samples.tsv").read_text().splitlines()
    header = next(line.split("\t") for line in lines if line.startswith("sample\t"))
    col = {name: i for i, name in enumerate(header)}
    out = []
    for line in lines:
        cells = line.split("\t")
        if len(cells) == len(header) and not line.startswith(("#", "sample\t")):
            for name in ("source", "annotation"):
                cells[col[name]] = str(REPO / cells[col[name]]) if cells[col[name]] else ""
            for name, value in set_cells.items():
                cells[col[name]] = value(cells[0], cells[col[name]])
        out.append("\t".join(cells))
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("\n".join(out) + "\n")
    return sheet


def _sheet_without_species_task(tmp_path: Path) -> Path:
    """The demo sheet with species_task false for every sample (paths made absolute)."""
    return _demo_sheet(tmp_path, species_task=lambda sample, cell: "false")


@pytest.mark.parametrize(
    ("over", "setting"),
    [
        ({}, r"probe\.finetuned \('mlm_kmer6_partial'\)"),
        ({"probe": {"finetuned": []}}, r"finetune\.runs\.(mlm_bpe_lora|esm_kmer6_full)\.tasks"),
    ],
)
def test_no_species_task_sample_blames_the_sheet(tmp_path, over, setting):
    """A sheet without any species_task: true sample, while the config asks for the species
    task: the sheet's column is named, not the run's tasks."""
    sheet = _sheet_without_species_task(tmp_path)
    with pytest.raises(SampleSheetError) as info:
        load(demo_config(samples=str(sheet), **over))
    message = str(info.value)
    assert re.match(setting + " asks for the species task species_fragments", message)
    assert f"no sample in the sample sheet {sheet} has species_task: true" in message
    assert "column species_task" in message


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_is_refused_by_load(case):
    """Each config check is reachable from load() and raises a DnalmError naming the key."""
    over, message = BAD_CONFIGS[case]
    with pytest.raises(DnalmError, match=message):
        load(demo_config(**over))


# --------------------------------------------------------------------------- GPU resources


def test_gpu_rules_book_a_gpu_when_their_stage_may_use_one():
    """The single-process GPU stages book one GPU (their rules' `gpu` resource) unless
    their device is the CPU or MPS: attributions and DNA+text included."""
    plan = load(demo_config())
    assert plan.gpus("finetune") == 1  # finetune.train.device auto
    assert plan.gpus("interpret") == 0  # interpret.device cpu (the default)
    assert plan.gpus("dnatext") == 0  # dnatext.device cpu (the default)
    assert plan.gpus("cnn") == 0  # baselines.onehot_cnn.train.device cpu (the default)
    plan = load(
        demo_config(
            interpret={"device": "cuda:1"},
            dnatext={"device": "auto"},
            baselines={"onehot_cnn": {"train": {"device": "cuda"}}},
            finetune={"train": {"device": "mps"}},
        )
    )
    assert [plan.gpus(s) for s in ("interpret", "dnatext", "cnn", "finetune")] == [1, 1, 1, 0]
    assert (
        load(demo_config(finetune={"gpus": 0}, interpret={"device": "cuda"})).gpus("interpret") == 0
    )


def test_finetune_gpus_above_one_is_refused():
    """Fine-tuning and its kin run in one process: finetune.gpus 2 would book an idle GPU."""
    with pytest.raises(ConfigError, match=r"finetune\.gpus is 2, .*set finetune\.gpus to 1"):
        load(demo_config(finetune={"gpus": 2}))


def test_corpus_packing_reaches_the_corpus_build_of_every_source():
    """A corpus's own packing is what its corpus job builds, for a task corpus too (which the
    DAG-build check of state-space models reads): a mamba model on padded task windows."""
    corpora = {
        "tfp": {"source": "task", "task": "tf_binding", "window": 120, "packing": "padded"},
        "gp": {"source": "genome", "samples": ["spyogenes"], "window": 120, "packing": "padded"},
        "tfq": {"source": "task", "task": "tf_binding", "window": 120},
    }
    model = {"objective": "gpt", "arch": "mamba", "tokenizer": "nucleotide", "preset": "tiny"}
    plan = load(
        demo_config(corpora=corpora, pretrain={"models": {"m": {**model, "corpus": "tfp"}}})
    )
    assert plan.corpus_build_settings("tfp")["packing"] == "padded"
    assert plan.corpus_build_settings("gp")["packing"] == "padded"
    assert plan.corpus_build_settings("tfq")["packing"] == "packed"  # corpus.packing


def test_block_size_within_an_overridden_context_is_accepted():
    over = {"overrides": {"context": 1024}}
    models = dict.fromkeys(demo_config()["pretrain"]["models"], over)
    sweeps = {"tiny_gpt": None}  # its sizes keep the preset's context
    analytics = {"sweeps": []}  # the demo's measures the sweep's runs
    plan = load(
        demo_config(
            corpus={"block_size": 1024},
            pretrain={"models": models},
            sweeps=sweeps,
            analytics=analytics,
        )
    )
    assert plan.config["corpus"]["block_size"] == 1024


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "corpus:\n  block_size: 128\nsplits:\n  seed: 1\ncorpus:\n  packing: padded\n",
            r"extra\.yaml:5: the key 'corpus' is written twice in one mapping \(first on line "
            r"1\); YAML would keep only the last one",
        ),
        (
            "splits:\n  seed: 1\n  seed: 2\n",
            r"extra\.yaml:3: the key 'seed' is written twice .*first on line 2",
        ),
        (
            "splits:\n  seed: !!python/object/apply:os.getpid []\n",
            r"extra\.yaml:2: the YAML tag !!python/object/apply:os\.getpid is not allowed in a "
            r"config file.*without the tag",
        ),
    ],
)
def test_config_file_duplicate_key_or_python_tag_is_refused(tmp_path, text, message):
    """The config files are read again with a strict loader: a key written twice (which
    YAML resolves silently, last wins) or a Python tag is named with its file and line."""
    extra = tmp_path / "extra.yaml"
    extra.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load(demo_config(), config_files=[REPO / "config/config.yaml", extra])
    assert "tab" not in str(info.value)


def test_shipped_config_files_pass_the_strict_reading():
    files = [REPO / "config/config.yaml", REPO / "tests/config/demo.yaml"]
    files += sorted((REPO / "config").glob("**/*.yaml"))
    plan = load(demo_config(), config_files=files)
    assert isinstance(plan, Plan)


# --------------------------------------------------------------------------- changed sources


def _verified_phix(tmp_path: Path) -> tuple[Plan, Path, Path]:
    """The demo plan with phiX174's genome as a local copy under tmp_path, verified: its
    provenance.json (as rule verify_sources writes it) newer than the file; cwd tmp_path."""
    src = tmp_path / "data" / "phix.gbk"
    src.parent.mkdir()
    src.write_bytes((REPO / "tests/data/genbank/NC_001422.gbk").read_bytes())
    old = src.stat().st_mtime - 3600
    os.utime(src, (old, old))
    sheet = _demo_sheet(
        tmp_path, source=lambda sample, cell: str(src) if sample == "phiX174" else cell
    )
    plan = load(demo_config(samples=str(sheet)))
    record = tmp_path / "resources/genomes/phiX174/provenance.json"
    record.parent.mkdir(parents=True)
    data = src.read_bytes()
    entry = {
        "source": str(src),
        "path": str(src),
        "size": len(data),
        "mtime_ns": src.stat().st_mtime_ns,
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    record.write_text(json.dumps({"sample": "phiX174", "files": {"primary": entry}}))
    os.chdir(tmp_path)
    return plan, src, record


def _replace_keeping_mtime(path: Path, data: bytes) -> None:
    """What cp -p, rsync -t and tar x do: new content with the modification time of the
    file it came from, older than the provenance record."""
    st = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 10**10))


@pytest.mark.parametrize("same_size", [False, True])
def test_local_source_replaced_under_its_old_mtime_is_rebuilt(tmp_path, same_size):
    plan, src, record = _verified_phix(tmp_path)
    assert plan.changed_sources() == []
    data = src.read_bytes()
    new = data.replace(b"1 gagttttatc", b"1 gagttttatg", 1)  # one base of the sequence
    assert new != data
    _replace_keeping_mtime(src, new if same_size else data + b"\n")
    (changed,) = plan.changed_sources()
    assert (changed.sample, changed.which) == ("phiX174", "primary")
    assert ("another sha256" if same_size else "size") in changed.why
    assert record.stat().st_mtime > src.stat().st_mtime  # Snakemake would not rerun
    (note,) = plan.rerun_changed_sources()
    assert note.startswith(f"sample phiX174: local primary file {src} changed")
    assert "rebuilt from the new file" in note
    assert record.stat().st_mtime < src.stat().st_mtime  # now Snakemake reruns the sample
    assert plan.changed_sources() == []  # and the next DAG build leaves it to Snakemake


def test_local_source_with_only_a_new_mtime_is_not_rebuilt(tmp_path):
    """Size or mtime changed but the same content (checksum): nothing to rebuild."""
    plan, src, record = _verified_phix(tmp_path)
    older = src.stat().st_mtime - 60
    os.utime(src, (older, older))
    before = record.stat().st_mtime_ns
    assert plan.changed_sources() == []
    assert plan.rerun_changed_sources() == []
    assert record.stat().st_mtime_ns == before


def test_file_url_task_input_is_its_absolute_path():
    """A file:// URL in the config is the local file it names (not a relative path)."""
    seqs = REPO / "tests/data/tasks/tf_binding/chr22_sequences.txt.gz"
    plan = load(demo_config(tasks={"tf_binding": {"sequences": seqs.as_uri()}}))
    assert plan.tf_binding_inputs(wildcards())["sequences"] == str(seqs)


def test_random_init_control_for_some_models_only():
    plan = load(demo_config(probe={"models": ["gpt_nucleotide", "mlm_kmer6"]}))
    assert ("random-init", "mlm_kmer6") in plan.embeddings()
    plan = load(demo_config(probe={"models": ["gpt_nucleotide", "mlm_kmer6"],
                                   "random_init": ["mlm_kmer6"]}))  # fmt: skip
    random = [name for regime, name in plan.embeddings() if regime == "random-init"]
    assert random == ["mlm_kmer6"]
    plan = load(demo_config(probe={"random_init": False}))
    assert not [n for r, n in plan.embeddings() if r == "random-init"]
    with pytest.raises(ConfigError, match=r"probe.random_init: 'mlm_kmer6' is not one of"):
        load(demo_config(probe={"models": ["gpt_nucleotide"], "random_init": ["mlm_kmer6"]}))


def test_jobs_over_many_samples_wait_for_the_gathered_splits_which_wait_for_every_file():
    """The tokenizer, corpus, species-task and walk-figure jobs read the split FASTAs of many
    samples through one input (gather_splits' table); gather_splits must wait for every file
    they read, so that a missing or rebuilt split FASTA still reruns them."""
    plan = load(demo_config())
    gathered = {f for files in plan.splits_of_every_sample().values() for f in files}
    read = set()
    for corpus, spec in plan.corpora.items():
        if spec["source"] == "cds":
            assert plan.corpus_split_inputs(wildcards(corpus=corpus)) == {
                "splits": "results/splits/assignment.tsv"
            }
            read |= {f for files in plan.corpus_split_files(corpus).values() for f in files}
    for tok in plan.tokenizers:
        read |= set(plan.tokenizer_training_files(tok))
    read |= {f for fs in plan.split_files(plan.species_samples).values() for f in fs}
    assert plan.walk_samples(), "the demo draws walks"
    assert plan.splits_input(plan.walk_samples()) == {"splits": SPLITS_TABLE}
    read |= set(plan.split_files(plan.walk_samples(), ["test"])["test"])
    assert read, "the demo reads CDS splits"
    assert read <= gathered
    assert {f"results/splits/{s}/assignment.tsv" for s in plan.cds_samples} <= gathered


def test_task_file_under_results_is_an_output_of_the_run():
    """A task file given as a relative path under results/ stays relative, so Snakemake
    builds it first (here the genome corpus's held-out windows as a TSTR task's real side);
    another relative path is taken from the working directory."""
    plan = load(
        demo_config(
            corpora={"cds": {"source": "cds"},
                     "genome": {"source": "genome", "samples": ["mgallisepticum"], "window": 60}},
            tasks={"sequence_tasks": {"tstr": {
                "kind": "classification", "generated": {"model": "gpt_nucleotide"},
                "test_fasta_by_class": {
                    "Mycoplasma gallisepticum":
                        "results/windows/genome/mgallisepticum/validation.fa.gz",
                    "other": "tests/data/other.fa"}}}},
        )
    )  # fmt: skip
    files = plan.sequence_task_inputs(wildcards(task="tstr"))
    assert files["test_fasta_by_class__Mycoplasma gallisepticum"] == (
        "results/windows/genome/mgallisepticum/validation.fa.gz"
    )
    assert files["test_fasta_by_class__other"] == str(REPO / "tests/data/other.fa")


def test_sequence_task_with_coordinates_is_kept_out_of_genome_corpora(tmp_path):
    """A sequence task whose table has chrom/start/end columns is placed on the genome like
    tf_binding: the genome windows job reads its data.tsv (BED ends, exclusive) and excludes
    what it names; a table without them, and a task with a generated side, are not."""
    placed, plain = tmp_path / "placed.tsv", tmp_path / "plain.csv"
    placed.write_text("id\tsequence\tlabel\tChrom\tstart\tEND\nw1\tACGT\ta\tchrIV\t10\t14\n")
    plain.write_text("sequence,label\nACGT,a\n")
    plan = load(
        demo_config(
            corpora={"cds": {"source": "cds"},
                     "genome": {"source": "genome", "samples": ["mgallisepticum"], "window": 60}},
            tasks={"sequence_tasks": {
                "placed": {"kind": "classification", "table": str(placed)},
                "plain": {"kind": "classification", "table": str(plain)},
                "tstr": {"kind": "classification", "test_table": str(placed),
                         "generated": {"model": "gpt_nucleotide"}}}},
        )
    )  # fmt: skip
    assert plan.window_tasks() == {"tf_binding": True, "placed": False}
    files = plan.genome_windows_inputs(wildcards(wcorpus="genome", sample="mgallisepticum"))
    assert files["task_placed"] == "results/tasks/placed/data.tsv"
    assert "task_plain" not in files
    assert "task_tstr" not in files


def test_identity_split_is_part_of_the_extraction_job_mmseqs_its_own():
    """splits.method identity: rule extract_cds also splits its sample (one per-sample job
    fewer at DAG build), with the split settings as its param; mmseqs: rule split_cds does,
    after the clusters of every sample."""
    identity = load(demo_config(splits={"method": "identity", "seed": 7}))
    assert identity.split_with_cds
    assert identity.split_settings() == {
        "seed": 7,
        "fractions": {"train": 0.8, "validation": 0.1, "test": 0.1},
        "allow_empty": False,
    }
    mmseqs = load(demo_config(splits={"method": "mmseqs"}))
    assert not mmseqs.split_with_cds
    assert mmseqs.split_cds_input(wildcards(sample="phageT4")) == {
        "cds": "results/cds/phageT4.fa.gz",
        "clusters": "results/splits/clusters.tsv",
    }


def test_selection_metric_is_checked_against_each_run_task_kind():
    """finetune.*.selection_metric: a metric of the task's kind is taken (the post's best
    epoch by validation accuracy); one of another kind is refused naming the run, the task
    and the metrics the kind has."""
    runs = {"mlm_bpe_lora": {"train": {"selection_metric": "accuracy"}}}
    plan = load(demo_config(finetune={"runs": runs}))
    assert (
        plan.finetune_settings("mlm_bpe_lora", "species_fragments")["selection_metric"]
        == "accuracy"
    )
    # tf_binding is a per-base regression: accuracy is not one of its metrics
    with pytest.raises(ConfigError) as err:
        load(demo_config(finetune={"per_task": {"tf_binding": {"selection_metric": "accuracy"}}}))
    msg = str(err.value)
    assert "on task tf_binding" in msg
    assert "finetune.per_task.tf_binding" in msg
    assert "pearson_r, spearman_r" in msg


# --------------------------------------------------------------------------- layer probe


def test_layer_probe_is_off_by_default_and_on_for_the_models_named():
    off = {"layers": "last", "pooling": "mean", "layer_models": None}  # the defaults
    plan = load(demo_config(probe=off))
    assert plan.layer_probes() == []
    assert plan.layer_metric_files() == []
    assert not [t for t in plan.targets() if "layer" in t]
    plan = load(
        demo_config(
            probe={"layers": "all", "pooling": ["mean", "cls", "last", "max"],
                   "layer_models": ["mlm_kmer6"]}
        )
    )  # fmt: skip
    assert plan.layer_probes() == [("pretrained", "mlm_kmer6")]  # not its random-init control
    assert plan.layer_probe_constraints() == {"eregime": "pretrained", "ename": "mlm_kmer6"}
    assert plan.layer_metric_files() == ["results/probe/layers/metrics/pretrained/mlm_kmer6.json"]
    assert {"results/probe/layer_table.tsv", "results/figures/probe/layer_probe.png"} <= set(
        plan.targets()
    )
    # null: every pretrained, fine-tuned and external embedding
    plan = load(demo_config(probe={"pooling": ["last", "max"], "layer_models": None}))
    assert plan.layer_probes() == [("pretrained", "mlm_kmer6"), ("fine-tuned", "mlm_kmer6_partial")]
    # a causal model takes every pooling but cls
    plan = load(demo_config(probe={"models": ["gpt_nucleotide"], "layers": [0, -1],
                                   "pooling": ["last", "mean", "max"],
                                   "layer_models": None}))  # fmt: skip
    assert ("pretrained", "gpt_nucleotide") in plan.layer_probes()
