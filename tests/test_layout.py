"""The library's layout holds as the README describes it (section "Code layout"):

- one sub-package per stage, and imports between them only along the allowed edges (no
  package reaches into a later stage; ``core`` and ``report`` reach into none);
- every script a rule runs imports ``core``, ``report`` and the stage packages of its own rule
  file only, so a reader who opens a rule file finds its code in one place;
- no library module is over 800 lines;
- one implementation of the things that used to exist several times (reverse complement,
  k-mer names, device choice, precision, model-folder loading).
"""

from __future__ import annotations

import ast
import re
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
