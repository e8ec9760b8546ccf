"""The library's layout holds as the README describes it (section "Code layout"):

- one sub-package per stage, and imports between them only along the allowed edges (no
  package reaches into a later stage; ``core`` and ``report`` reach into none);
- every script a rule runs imports ``core``, ``report`` and the stage packages of its own rule
  file only, so a reader who opens a rule file finds its code in one place;
- no library module is over 800 lines;
- no import cycle between the library's modules;
- one training loop: the backward passes and optimizer steps are those of
  ``dnalm.training.loop.TrainingLoop``, which also builds the optimizer and its schedule;
- a pretraining setting goes from the config to the optimizer step through at most five
  files and never comes back to a package it left (followed as the code runs, with a
  profile hook: :func:`setting_walk`);
- one implementation of the things that used to exist several times (reverse complement,
  k-mer names, device choice, precision, model-folder loading);
- the names of the stage output files (run.json, metrics.json, ...) are spelled in one module,
  dnalm.core.artifacts, and imported from it everywhere else.
- the registries of kinds are complete: every architecture of ``dnalm.kinds.archs`` has its
  builder file ``dnalm/modeling/archs/<name>.py`` and every builder file its descriptor; every
  loss of ``dnalm.kinds.losses`` has its branch in ``dnalm/training/objectives.py``.
- importing the library does nothing else: no import hooks, no registration with
  transformers, no module-level statements but imports, definitions and assignments; the
  data stages never import torch or transformers;
- an import inside a function says why it is there (``# lazy: <reason>``).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dnalm.core import artifacts

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "workflow" / "scripts" / "dnalm"
SCRIPTS = REPO / "workflow" / "scripts"
RULES = REPO / "workflow" / "rules"

#: package -> the packages it may import (besides itself)
ALLOWED = {
    "core": set(),
    "kinds": {"core"},
    "report": {"core"},
    "genome": {"core"},
    "tasks": {"core", "genome"},
    "tokenization": {"core"},
    "modeling": {"core", "tokenization"},
    "training": {"core", "modeling", "tokenization"},
    "evaluation": {"core", "modeling", "tasks", "tokenization", "training", "report"},
    "finetuning": {"core", "modeling", "tasks", "tokenization", "training", "evaluation"},
    "generation": {"core", "tokenization", "modeling", "evaluation", "genome"},
    "interpretation": {
        "core",
        "modeling",
        "tasks",
        "tokenization",
        "training",
        "evaluation",
        "finetuning",
        "report",
    },
    "multimodal": {"core", "tokenization", "modeling", "training", "evaluation"},
    # the plan (DAG build) calls the torch-free checks of the stages; no stage imports it
    "plan": {"core", "genome", "tasks", "training", "evaluation", "generation", "report"},
}
# the registry of kinds is torch-free and below every stage: any stage may read it
for _package, _allowed in ALLOWED.items():
    if _package not in ("core", "kinds"):
        _allowed.add("kinds")
#: rule file -> the stage packages its scripts use (besides core and report)
RULE_PACKAGES = {
    "download": {"genome"},
    "cds": {"genome"},
    "splits": {"genome"},
    "genome": {"genome"},
    "windows": {"genome"},
    "tasks": {"tasks"},
    "tokenize": {"tokenization"},
    "pretrain": {"training"},
    "finetune": {"finetuning"},
    "probe": {"evaluation"},
    "generate": {"generation"},
    "genecomp": {"generation"},
    "robustness": {"evaluation"},
    "sweep": {"evaluation"},
    "figures": set(),
    "walks": set(),
    "reproduce": set(),
    "interpret": {"interpretation"},
    "dnatext": {"multimodal"},
    "vep": {"evaluation"},
    "analytics": {"evaluation"},
}


def dnalm_imports(path: Path) -> set[str]:
    """The dnalm sub-packages that `path` imports (anywhere in the file)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "dnalm" and len(parts) > 1 and (LIB / parts[1]).is_dir():
                out.add(parts[1])
    return out


def test_every_module_is_in_a_stage_package():
    loose = sorted(p.name for p in LIB.glob("*.py") if p.name not in {"__init__.py", "cli.py"})
    assert not loose, f"modules outside the stage packages: {loose}"
    assert set(ALLOWED) == {p.name for p in LIB.iterdir() if (p / "__init__.py").is_file()}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_along_the_allowed_edges(package):
    bad = {
        f"{path.relative_to(LIB)} imports dnalm.{other}"
        for path in (LIB / package).rglob("*.py")
        for other in dnalm_imports(path) - ALLOWED[package] - {package}
    }
    assert not bad, sorted(bad)


def test_allowed_edges_have_no_cycle():
    seen: dict[str, int] = {}

    def visit(pkg: str, stack: tuple[str, ...]) -> None:
        assert pkg not in stack, f"cycle: {' -> '.join((*stack, pkg))}"
        for dep in ALLOWED[pkg]:
            visit(dep, (*stack, pkg))
        seen[pkg] = 1

    for pkg in ALLOWED:
        visit(pkg, ())


def test_core_is_torch_free():
    """core is below every stage, the torch-free ones (genome, tasks, report) included:
    importing its modules (but device.py, the torch device choice) loads no torch."""
    modules = sorted(
        f"dnalm.core.{p.stem}" for p in (LIB / "core").glob("*.py") if p.stem != "device"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "heavy = sorted({'torch', 'transformers', 'safetensors'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def rule_scripts() -> list[tuple[str, str]]:
    """(rule file, what its rules run) for every `script:` (``extract.py``) and every module
    of the library a `shell:` rule runs with ``-m`` (``dnalm/genome/jobs.py``), as paths
    under workflow/scripts."""
    out = []
    for smk in sorted(RULES.glob("*.smk")):
        text = smk.read_text()
        for script in sorted(set(re.findall(r'"\.\./scripts/(\w+\.py)"', text))):
            out.append((smk.stem, script))
        for module in sorted(set(re.findall(r" -m (dnalm(?:\.\w+)+)", text))):
            out.append((smk.stem, module.replace(".", "/") + ".py"))
    return out


def test_rule_modules_are_found():
    """The modules that shell: rules run are seen by the checks of the rules' code."""
    assert ("download", "dnalm/genome/jobs.py") in rule_scripts()
    assert ("cds", "dnalm/genome/jobs.py") in rule_scripts()
    assert all((SCRIPTS / script).is_file() for _, script in rule_scripts())


def test_rule_files_are_mapped():
    assert {stem for stem, _ in rule_scripts()} == set(RULE_PACKAGES)


@pytest.mark.parametrize(("rule_file", "script"), rule_scripts())
def test_rule_scripts_use_their_stage_package(rule_file, script):
    used = dnalm_imports(SCRIPTS / script) - {"core", "report"}
    if script.startswith("dnalm/"):  # a module of the library: its own package too
        used.add(script.split("/")[1])
    assert used <= RULE_PACKAGES[rule_file], (
        f"workflow/scripts/{script} (rules/{rule_file}.smk) imports {sorted(used)}; its code "
        f"belongs in {sorted(RULE_PACKAGES[rule_file]) or 'report'}"
    )


def test_no_library_module_over_800_lines():
    long = {
        str(p.relative_to(LIB)): n
        for p in LIB.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 800
    }
    assert not long, long


def top_level_defs(name: str) -> list[str]:
    """Library modules that define a top-level function or class called `name`."""
    hits = []
    for p in LIB.rglob("*.py"):
        for node in ast.parse(p.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name:
                hits.append(str(p.relative_to(LIB)))
    return hits


@pytest.mark.parametrize(
    "name",
    [
        "reverse_complement",
        "revcomp",
        "kmer_names",
        "kmer_frequencies",
        "select_device",
        "resolve_precision",
        "param_groups",
        "load_model_folder",
        "write_curves",
    ],
)
def test_one_implementation(name):
    assert len(top_level_defs(name)) <= 1, top_level_defs(name)


def test_no_private_translation_tables_outside_the_alphabet():
    """Base tables (str.maketrans complements, 256-entry byte lookups of ACGT) live in
    dnalm.core.alphabet (its NumPy-free text part in dnalm.core.letters); tokenizers keep their
    own id tables, which map to token ids."""
    pattern = re.compile(r'maketrans\(\s*"ACGT|frombuffer\(b"ACGT')
    hits = [
        str(p.relative_to(LIB))
        for p in LIB.rglob("*.py")
        if str(p.relative_to(LIB)) not in {"core/alphabet.py", "core/letters.py"}
        and pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert not hits, hits


def test_output_file_names_come_from_the_artifacts_module():
    """No string literal equal to a name of dnalm.core.artifacts (``"metrics.json"``) in a
    library module or rule script other than the artifacts module itself."""
    names = set(artifacts.ALL)
    assert {"run.json", "metrics.json", "curves.csv"} <= names
    bare = {}
    for path in sorted({*LIB.rglob("*.py"), *SCRIPTS.glob("*.py")}):
        rel = str(path.relative_to(SCRIPTS))
        if rel == "dnalm/core/artifacts.py":
            continue
        hits = sorted(
            {
                node.value
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.Constant) and node.value in names
            }
        )
        if hits:
            bare[rel] = hits
    assert not bare, f"use the names of dnalm.core.artifacts instead of: {bare}"


# ------------------------------------------------------------- the registry is complete
# Every registered kind has its builder and every builder its kind, so that adding one means
# a descriptor in dnalm.kinds and its builder, and forgetting either fails here.


def _class_types(path: Path) -> dict[str, set[str]]:
    """`type = "..."` of each class in `path` -> the names of the methods it defines."""
    out = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.ClassDef):
            continue
        methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        for stmt in node.body:
            if (
                isinstance(stmt, ast.Assign)
                and [getattr(t, "id", None) for t in stmt.targets] == ["type"]
                and isinstance(stmt.value, ast.Constant)
            ):
                out[stmt.value.value] = methods
    return out


def test_every_tokenizer_kind_has_its_builder_class():
    from dnalm.kinds.tokenizers import TOKENIZER_KINDS

    classes = _class_types(LIB / "tokenization" / "kinds.py")
    assert set(classes) == set(TOKENIZER_KINDS.names()), (
        "dnalm.kinds.tokenizers and the DnaTokenizer classes of tokenization/kinds.py differ"
    )
    lacking = sorted(t for t, methods in classes.items() if "backend" not in methods)
    assert not lacking, f"tokenizer classes without their own backend(): {lacking}"


def test_every_sample_format_has_its_readers():
    from dnalm.genome.cds import CDS_EXTRACTORS
    from dnalm.genome.contigs import GENOME_READERS
    from dnalm.genome.features import FEATURE_READERS
    from dnalm.kinds.formats import SAMPLE_FORMATS

    for field, readers in (
        ("cds", CDS_EXTRACTORS),
        ("genome", GENOME_READERS),
        ("features", FEATURE_READERS),
    ):
        used = {getattr(f, field) for f in SAMPLE_FORMATS} - {None}
        assert used <= set(readers), f"{field} readers missing: {sorted(used - set(readers))}"
        assert set(readers) <= used, f"{field} readers of no format: {sorted(set(readers) - used)}"


def test_every_task_kind_has_a_builder_and_every_builder_its_entry():
    from dnalm.kinds.tasks import BUILTIN_TASKS, SEQUENCE_TASK_KINDS, TASK_KINDS

    built = {t.kind for t in BUILTIN_TASKS if t.kind} | set(SEQUENCE_TASK_KINDS)
    assert built == set(TASK_KINDS.names()), "a task kind no built-in task builds, or vice versa"
    registered = set()
    for task in BUILTIN_TASKS:
        module, func = task.builder.split(":")
        assert func in top_level_names(LIB / "tasks" / f"{module}.py"), task.builder
        registered.add(func)
    builders = {
        name
        for p in (LIB / "tasks").glob("*.py")
        for name in top_level_names(p)
        if name.startswith("build_")
    }
    assert builders <= registered, f"task builders not in BUILTIN_TASKS: {builders - registered}"


def top_level_names(path: Path) -> set[str]:
    return {
        node.name
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
    }


def test_every_architecture_has_its_builder_and_every_builder_its_architecture():
    from dnalm.kinds.archs import ARCHS

    builders = {p.stem for p in (LIB / "modeling" / "archs").glob("*.py")} - {"__init__"}
    assert builders == set(ARCHS.names()), (
        "an architecture is its descriptor in dnalm/kinds/archs.py plus its builder "
        f"dnalm/modeling/archs/<name>.py; without a builder: {set(ARCHS.names()) - builders}, "
        f"without a descriptor: {builders - set(ARCHS.names())}"
    )
    for name in builders:
        tree = ast.parse((LIB / "modeling" / "archs" / f"{name}.py").read_text(encoding="utf-8"))
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                    if isinstance(t, ast.Name)}  # fmt: skip
        assert {"MODEL_CLASS", "build_config"} <= defined, name


def test_every_loss_has_its_implementation():
    """Every loss name is a string the objective code compares against (its branch)."""
    from dnalm.kinds.losses import LOSSES

    tree = ast.parse((LIB / "training" / "objectives.py").read_text(encoding="utf-8"))
    compared = {
        c.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        for c in ast.walk(node)
        if isinstance(c, ast.Constant) and isinstance(c.value, str)
    }
    missing = set(LOSSES.names()) - compared
    assert not missing, f"losses without a branch in training/objectives.py: {sorted(missing)}"


def module_name(path: Path) -> str:
    """The dotted name of a library file (a package's __init__.py: the package)."""
    parts = list(path.relative_to(LIB.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports(path: Path, modules: set[str]) -> set[str]:
    """The library modules that `path` imports anywhere in the file (function-level and
    TYPE_CHECKING imports included): ``from dnalm.a import b`` names dnalm.a.b when that is
    a module, else dnalm.a."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return out & modules


def test_no_import_cycle_between_modules():
    files = {module_name(p): p for p in LIB.rglob("*.py")}
    graph = {m: module_imports(p, set(files)) - {m} for m, p in files.items()}
    state: dict[str, str] = {}  # "open" while on the path, then "done"

    def visit(module: str, path: tuple[str, ...]) -> None:
        state[module] = "open"
        for dep in sorted(graph[module]):
            assert state.get(dep) != "open", f"import cycle: {' -> '.join((*path, dep))}"
            if dep not in state:
                visit(dep, (*path, dep))
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, (module,))


#: calls that train a model: the backward pass, gradient clipping, zeroing gradients and the
#: optimizer and scheduler steps
TRAINING_CALLS = {"backward", "step", "zero_grad", "clip_grad_norm_"}
#: the one module, and the one class in it, that implements the training loop
TRAINING_LOOP = ("training/loop.py", "TrainingLoop")
#: justified exceptions: module -> why it may make such calls itself (none today)
TRAINING_CALL_EXCEPTIONS: dict[str, str] = {}


def _training_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
        in TRAINING_CALLS
    ]


def test_one_class_implements_the_training_loop():
    outside = {
        f"{path.relative_to(LIB)}:{call.lineno}"
        for path in LIB.rglob("*.py")
        if str(path.relative_to(LIB)) not in (TRAINING_LOOP[0], *TRAINING_CALL_EXCEPTIONS)
        for call in _training_calls(ast.parse(path.read_text(encoding="utf-8")))
    }
    assert not outside, (
        f"backward/optimizer steps outside {TRAINING_LOOP[0]}: {sorted(outside)}; train through "
        f"dnalm.training.loop.{TRAINING_LOOP[1]}"
    )
    tree = ast.parse((LIB / TRAINING_LOOP[0]).read_text(encoding="utf-8"))
    in_classes = {
        id(call): node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        for call in _training_calls(node)
    }
    assert set(in_classes.values()) == {TRAINING_LOOP[1]}
    assert all(id(call) in in_classes for call in _training_calls(tree)), (
        f"training calls in {TRAINING_LOOP[0]} outside {TRAINING_LOOP[1]}"
    )


# ------------------------------------------------------------------------- the walk of a setting

#: the optimizer settings that the code between the run and the loop must leave unopened
OPTIMIZER_SETTINGS = {"lr", "weight_decay", "beta1", "beta2", "eps"}
#: the most files the walk of a setting may enter
MAX_WALK_FILES = 5
#: the rule, its param and the config model whose pretraining setting is followed
WALK_RULE, WALK_PARAM, WALK_MODEL = "pretrain", "train", "gpt_nucleotide"


def _rule_param(rule: str, param: str) -> tuple[Path, str, str]:
    """(rule file, the param's expression, the rule's script) of `rule`."""
    for smk in sorted(RULES.glob("*.smk")):
        text = smk.read_text(encoding="utf-8")
        m = re.search(rf"^rule {rule}:\n(.*?)(?=^\S)", text + "\nend", re.M | re.S)
        if m:
            expr = re.search(rf"^\s+{param}=(.+),$", m.group(1), re.M).group(1)
            script = re.search(r'"\.\./scripts/(\w+\.py)"', m.group(1)).group(1)
            return smk, expr, script
    raise AssertionError(f"no rule {rule}")


def _script_main(script: Path):
    """The `main` of a rule script, compiled from its own file (without the last statement,
    ``run_script(snakemake, main)``, which needs Snakemake's object)."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    tree.body = [n for n in tree.body if not ast.unparse(n).startswith("run_script(")]
    namespace: dict = {"__name__": "walked_script"}
    exec(compile(tree, str(script), "exec"), namespace)
    return namespace["main"]


def setting_walk(key: str, value, tmp_path: Path) -> tuple[list[str], list[list]]:
    """Follow `pretrain.train.<key>` set to `value` (an object of its own) from the config to
    the optimizer's first step (tests/support/setting_walk.py): at DAG build, the rule's param
    as the rule file writes it, called on the plan of the demo config; in the job, the rule
    script's main on a tiny corpus, until the first optimizer step. Returns the files in
    the order the value enters them and the stacks it was seen on (the DAG side's innermost
    first: the value comes out of the plan into the rule; the job's outermost first: it is
    handed down from the script)."""
    from dnalm.plan import load
    from tests.support.lm_corpus import make_corpus
    from tests.support.setting_walk import Reached, SettingTrace, walk_files
    from tests.support.workflow_runner import demo_config

    train = {"max_steps": 3, "micro_batch_size": 4, "eval_interval": 2, "threads": 1}
    config = demo_config(pretrain={"train": {**train, key: value}})
    cwd = os.getcwd()
    os.chdir(REPO)  # the demo config's paths are from the repository root
    try:
        plan = load(config)
    finally:
        os.chdir(cwd)
    smk_file, expr, script = _rule_param(WALK_RULE, WALK_PARAM)
    param = eval(compile(expr, str(smk_file), "eval"), {"PLAN": plan, "config": plan.config})
    dag = SettingTrace(value)
    wildcards = type("Wildcards", (), {"model": WALK_MODEL})()
    settings = dag.run(param, wildcards)
    assert settings[key] is value, f"params.{WALK_PARAM} does not carry {key}"

    job = SettingTrace(value)
    main = _script_main(SCRIPTS / script)
    ns = type("Namespace", (), {})
    smk = ns()
    smk.input, smk.params, smk.wildcards = ns(), ns(), wildcards
    smk.input.corpus = make_corpus(tmp_path / "corpus")
    smk.params.spec = plan.models[WALK_MODEL]
    setattr(smk.params, WALK_PARAM, settings)
    smk.params.gpus, smk.params.nodes, smk.params.strategy = 1, 1, "ddp"
    smk.params.model_dir = tmp_path / "model"
    smk.threads, smk.config, smk.log = 1, plan.config, [str(tmp_path / "log")]
    handle = job.stop_at_first_step()
    try:
        with pytest.raises(Reached):
            job.run(main, smk)
    finally:
        handle.remove()
    assert job.step_stack, "the run did not get to an optimizer step"
    stacks = [s[::-1] for s in dag.stacks] + job.stacks + [job.step_stack]
    return walk_files(stacks), stacks


@pytest.mark.parametrize(("key", "value"), [("lr", 0.000731), ("warmup_steps", 1001)])
def test_a_pretraining_setting_walks_through_few_files_and_never_back(key, value, tmp_path):
    """From the config to the optimizer step a pretraining setting enters at most
    MAX_WALK_FILES files of ours and never comes back to a package it left. Followed as the
    code runs (setting_walk): every file whose code gets the value (or the settings holding
    it) as an argument or a result, with the frames that called it, and the frames of the
    optimizer's first step. It used to be seven files and more, from training to core (the
    settings' base class, as_dict) and back."""
    from tests.support.setting_walk import reentered

    value = type(value)(str(value))  # an object of its own: no other value `is` it
    files, stacks = setting_walk(key, value, tmp_path)
    shown = "\n".join("  " + " > ".join(f"{f}:{fn}" for f, fn in s) for s in stacks)
    assert len(files) <= MAX_WALK_FILES, f"{len(files)} files {files}; the stacks:\n{shown}"
    assert files[0].startswith("workflow/scripts/dnalm/plan/"), files
    sequences = [files] + [[f for f, _ in stack] for stack in stacks]
    back = sorted({p for seq in sequences for p in reentered(seq)})
    assert not back, f"the walk comes back to {back}: {files}; the stacks:\n{shown}"


def _reads_setting(node: ast.AST, names: set[str]) -> bool:
    """`node` reads one of the settings `names` by its own name: ``x.lr`` or ``x["lr"]``."""
    if isinstance(node, ast.Attribute):
        return node.attr in names
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value in names
    return False


def test_one_place_builds_the_optimizer():
    """The training loop builds AdamW (and its schedule) for every caller, and the code that
    hands it the pretraining settings opens none of the optimizer's: a new optimizer setting
    touches the settings dataclass and the loop only."""
    sites = sorted(
        f"{path.relative_to(LIB)}:{node.lineno}"
        for path in LIB.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and ast.unparse(node.func).split(".")[-1] in {"AdamW", "LambdaLR"}
    )
    assert {s.split(":")[0] for s in sites} == {TRAINING_LOOP[0]}, sites
    # the pretraining module hands run.train to the loop and reads no optimizer setting
    handed, opened = [], []
    for path in sorted((LIB / "training").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == TRAINING_LOOP[1]:
                args = [*node.args, *(kw.value for kw in node.keywords)]
                if any(ast.unparse(a).endswith("run.train") for a in args):
                    handed.append(path)
                    opened += [
                        f"{path.relative_to(LIB)}:{n.lineno}: {ast.unparse(n)}"
                        for n in ast.walk(tree)
                        if _reads_setting(n, OPTIMIZER_SETTINGS)
                        # the loop's own rate of the step (loop.lr, for the curves) is not
                        # the setting
                        and not ast.unparse(n.value).endswith("loop")
                    ]
    assert handed, f"no {TRAINING_LOOP[1]}(...) is given a pretraining run's `train`"
    assert not opened, opened


def test_the_plan_is_torch_free():
    """dnalm.plan runs while Snakemake parses the workflow: importing it and building the
    demo's plan must not import torch (seconds per dry run, and no GPU stack at DAG build)."""
    import subprocess
    import sys

    code = (
        "import sys, yaml\n"
        "from dnalm.plan import load\n"
        "from tests.support.workflow_runner import deep_merge\n"
        "config = deep_merge(yaml.safe_load(open('config/config.yaml')),\n"
        "                    yaml.safe_load(open('tests/config/demo.yaml')))\n"
        "load(config)\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'safetensors') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{SCRIPTS}{os.pathsep}{REPO}"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def library_modules() -> list[str]:
    """Every module of the library, dotted (dnalm.core.io, ...)."""
    return sorted(
        ".".join(("dnalm", *p.relative_to(LIB).with_suffix("").parts)).removesuffix(".__init__")
        for p in LIB.rglob("*.py")
    )


def run_python(code: str) -> dict:
    """Run `code` in a fresh interpreter with the library on the path; its last stdout line
    is JSON."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(SCRIPTS)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_the_library_changes_nothing_outside_it():
    """No import hook (sys.meta_path), and no model type registered with transformers, after
    importing dnalm and then every one of its modules; model types are registered where
    folders are loaded (dnalm.modeling.loader.register_model_types)."""
    code = f"""
import importlib, json, sys
before = list(sys.meta_path)
import dnalm
after_package = list(sys.meta_path)
for name in {library_modules()!r}:
    importlib.import_module(name)
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from dnalm.modeling.loader import OWN_MODEL_TYPES
print(json.dumps({{
    "package_hooks": [repr(f) for f in after_package if f not in before],
    "dnalm_hooks": [repr(f) for f in sys.meta_path
                    if f not in before and type(f).__module__.startswith("dnalm")],
    "registered": [t for t in OWN_MODEL_TYPES if t in CONFIG_MAPPING],
}}))
"""
    got = run_python(code)
    assert got["package_hooks"] == [], "import dnalm changed sys.meta_path"
    assert got["dnalm_hooks"] == [], "a dnalm module installs an import hook"
    assert got["registered"] == [], "importing dnalm registered model types with transformers"


def test_register_model_types_makes_folders_loadable():
    code = """
import json
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from dnalm.modeling.loader import OWN_MODEL_TYPES, register_model_types
register_model_types()
register_model_types()  # idempotent
print(json.dumps([t for t in OWN_MODEL_TYPES if t not in CONFIG_MAPPING]))
"""
    assert run_python(code) == []


#: packages that never import torch or transformers (they run at DAG build, in the data
#: rules and in `dnalm cds`), and the modules of them that are exempt
TORCH_FREE_PACKAGES = ("core", "kinds", "genome", "tasks", "report", "tokenization")
TORCH_MODULES = {"dnalm.core.device"}  # chooses the torch device: torch by definition


def test_torch_free_packages_import_no_torch():
    names = [
        n
        for n in library_modules()
        if n.split(".")[1:2] and n.split(".")[1] in TORCH_FREE_PACKAGES and n not in TORCH_MODULES
    ]
    code = f"""
import importlib, json, sys
for name in {names!r}:
    importlib.import_module(name)
print(json.dumps([m for m in ("torch", "transformers") if m in sys.modules]))
"""
    assert run_python(code) == []


#: module-level statements other than imports, definitions, assignments and docstrings,
#: each with the reason it is harmless (it fills a private lookup table of its own module)
TOP_LEVEL_EXCEPTIONS = {
    "core/walks.py": "a for loop fills the module's base -> corner lookup table",
    "genome/windows.py": "a for loop fills the module's base -> code lookup table",
}


def _harmless(node: ast.stmt) -> bool:
    if isinstance(
        node,
        ast.Import
        | ast.ImportFrom
        | ast.FunctionDef
        | ast.AsyncFunctionDef
        | ast.ClassDef
        | ast.Assign
        | ast.AnnAssign
        | ast.AugAssign,
    ):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return isinstance(node.value.value, str)  # a docstring
    if (  # `ARCHS.register(...)`: a kinds module fills its own registry (dnalm.kinds)
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr == "register"
        and isinstance(node.value.func.value, ast.Name)
    ):
        return True
    # `if TYPE_CHECKING:` imports, and the `if __name__ == "__main__":` of a command
    return isinstance(node, ast.If) and ast.unparse(node.test) in (
        "TYPE_CHECKING",
        "__name__ == '__main__'",
    )


def test_modules_only_define_things_at_import():
    found = {}
    for p in sorted(LIB.rglob("*.py")):
        rel = str(p.relative_to(LIB))
        body = ast.parse(p.read_text(encoding="utf-8")).body
        odd = [f"{rel}:{n.lineno}" for n in body if not _harmless(n)]
        if odd:
            found[rel] = odd
    assert set(found) <= set(TOP_LEVEL_EXCEPTIONS), {
        k: v for k, v in found.items() if k not in TOP_LEVEL_EXCEPTIONS
    }


LAZY = re.compile(r"#.*\blazy: \S")


def function_level_imports() -> list[tuple[str, int, str]]:
    """(module path, line, source line) of every import inside a function of the library."""
    out = set()
    for p in sorted(LIB.rglob("*.py")):
        lines = p.read_text(encoding="utf-8").splitlines()
        for fn in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    # the reason may also stand on the comment line just above the import
                    above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                    text = " ".join(lines[node.lineno - 1 : node.end_lineno])
                    text += f"  {above}" if above.startswith("#") else ""
                    out.add((str(p.relative_to(LIB)), node.lineno, text))
    return sorted(out)


def test_every_function_level_import_says_why_it_is_lazy():
    """An import belongs at the top of its module unless it keeps a heavy dependency out of
    the DAG build or the command line's start (or breaks a cycle); such an import carries
    ``# lazy: <reason>``."""
    imports = function_level_imports()
    assert imports, "the scan found no function-level import at all"
    bare = [
        f"{path}:{line}: {text.strip()}" for path, line, text in imports if not LAZY.search(text)
    ]
    assert not bare, bare
