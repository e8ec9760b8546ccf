"""The library's layout holds as the README describes it (section "Code layout"):

- one sub-package per stage, and imports between them only along the allowed edges (no
  package reaches into a later stage; ``core`` and ``report`` reach into none);
- every script a rule runs imports ``core``, ``report`` and the stage packages of its own rule
  file only, so a reader who opens a rule file finds its code in one place;
- no library module is over 800 lines;
- one implementation of the things that used to exist several times (reverse complement,
  k-mer names, device choice, precision, model-folder loading);
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

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "workflow" / "scripts" / "dnalm"
SCRIPTS = REPO / "workflow" / "scripts"
RULES = REPO / "workflow" / "rules"

#: package -> the packages it may import (besides itself)
ALLOWED = {
    "core": set(),
    "kinds": {"core"},
    "report": {"core"},
    "genome": {"core", "report"},
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
    "sweep": {"evaluation"},
    "figures": set(),
    "walks": set(),
    "reproduce": set(),
    "interpret": {"interpretation"},
    "dnatext": {"multimodal"},
    "vep": {"evaluation"},
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
        for path in (LIB / package).glob("*.py")
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


def rule_scripts() -> list[tuple[str, str]]:
    out = []
    for smk in sorted(RULES.glob("*.smk")):
        for script in sorted(set(re.findall(r'"\.\./scripts/(\w+\.py)"', smk.read_text()))):
            out.append((smk.stem, script))
    return out


def test_rule_files_are_mapped():
    assert {stem for stem, _ in rule_scripts()} == set(RULE_PACKAGES)


@pytest.mark.parametrize(("rule_file", "script"), rule_scripts())
def test_rule_scripts_use_their_stage_package(rule_file, script):
    used = dnalm_imports(SCRIPTS / script) - {"core", "report"}
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
