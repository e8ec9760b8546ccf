"""The light jobs start light: a rule script whose job needs no model imports no torch,
transformers, umap-learn or scikit-learn when it starts.

Each job is its own Python process, so what a script's imports pull in is paid once per
job: importing torch and transformers costs seconds of CPU, umap-learn seconds more (numba),
scikit-learn about one. The scripts below that need torch say so in ``NEEDS_TORCH``; every
other script of ``workflow/scripts`` must import its modules without any of the heavy
packages (those it uses, it imports inside the function that uses them, with a ``# lazy:``
reason).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"

#: the scripts whose jobs run a model (train, embed, sample, score or attribute)
NEEDS_TORCH = {
    "baseline_cnn",
    "checkpoint_analytics",
    "dnatext_embed",
    "dnatext_train",
    "embed_model",
    "finetune_run",
    "gene_completion_model",
    "generate_samples",
    "interpret_run",
    "pretrain",
    "robustness_panel",
    "vep_score",
}
HEAVY = ("torch", "transformers", "umap", "numba", "sklearn")


def script_imports(path: Path) -> list[str]:
    """The modules a rule script imports at its top level (the script itself cannot be
    imported outside Snakemake: it runs its job when loaded)."""
    out = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return out


def heavy_imports(scripts: dict[str, list[str]]) -> dict[str, list[str]]:
    """In one fresh interpreter, import each script's modules in turn and record which heavy
    packages each script brought in (a package is blamed on the first script that loads
    it)."""
    code = f"""
import importlib, json, sys
heavy = {HEAVY!r}
got = {{}}
for script, modules in {scripts!r}.items():
    before = {{h for h in heavy if h in sys.modules}}
    for m in modules:
        importlib.import_module(m)
    got[script] = sorted(h for h in heavy if h in sys.modules and h not in before)
print(json.dumps(got))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SCRIPTS), str(REPO)])}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_torch_list_names_real_scripts():
    names = {p.stem for p in SCRIPTS.glob("*.py")}
    assert names >= NEEDS_TORCH, sorted(NEEDS_TORCH - names)


def test_light_scripts_import_no_torch_umap_or_sklearn():
    light = {
        p.stem: script_imports(p) for p in sorted(SCRIPTS.glob("*.py")) if p.stem not in NEEDS_TORCH
    }
    assert {"probe_table", "umap_plot", "finetune_compare", "sweep_summary"} <= set(light)
    got = heavy_imports(light)
    bad = {script: pkgs for script, pkgs in got.items() if pkgs}
    assert not bad, (
        "these rule scripts load heavy packages their job does not need when they start "
        f"(script: packages): {bad}; move the import into the function that needs it "
        "(with a '# lazy:' reason) or the torch-free part into a module of its own, or add "
        "the script to NEEDS_TORCH if its job runs a model"
    )
