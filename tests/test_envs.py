"""The conda env files under envs/: pinned to the versions of pyproject.toml, and each rule's
env provides every third-party module its script imports (through the dnalm modules it uses).

No conda client can run on the machines this project is tested on, so the envs are not solved
here; this is as far as testing them goes (see the README)."""

from __future__ import annotations

import ast
import itertools
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"
# a rule at the top level or inside an `if` of its rule file (split_cds)
RULE_RE = re.compile(r"^(?: {4})*(?:rule|checkpoint) (\w+):", re.M)
# conda-forge names of PyPI distributions where they differ
CONDA_NAME = {"torch": "pytorch"}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_pins() -> dict[str, str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = {}
    # the base install and the optional run-tracking backends (the torch env carries them)
    for dep in [
        *data["project"]["dependencies"],
        *data["project"]["optional-dependencies"]["tracking"],
    ]:
        name, version = dep.split("==")
        pins[norm(name)] = version
    return pins


def env_packages(path: Path) -> dict[str, str]:
    """{normalised PyPI name: version} of a conda env file (conda and pip sections)."""
    env = yaml.safe_load(path.read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for pip_dep in dep.get("pip", []):
                name, version = pip_dep.split("==")
                out[norm(name)] = version
        else:
            name, _, version = dep.partition("=")
            inverse = {v: k for k, v in CONDA_NAME.items()}
            out[norm(inverse.get(name, name))] = version
    return out


def rules_with_envs() -> list[tuple[str, Path, Path]]:
    """(rule, env file, script) for every rule of the workflow that runs a script, or a
    module of the library with ``-m`` (its file stands for the script)."""
    found = []
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = [(m.start(), m.group(1)) for m in RULE_RE.finditer(text)] + [(len(text), "")]
        for (start, name), (end, _) in itertools.pairwise(starts):
            body = text[start:end]
            conda = re.search(r'conda:\s*\n\s*"([^"]+)"', body)
            script = re.search(r'script:\s*\n\s*"([^"]+)"', body)
            module = re.search(r" -m (dnalm(?:\.\w+)+)", body)
            assert conda, f"rule {name} in {smk.name} has no conda: directive"
            assert re.search(r"\n(?: {4})+log:", body), f"rule {name} in {smk.name} has no log:"
            env = (smk.parent / conda.group(1)).resolve()
            if script:
                found.append((name, env, (smk.parent / script.group(1)).resolve()))
            elif module:
                found.append((name, env, SCRIPTS / (module.group(1).replace(".", "/") + ".py")))
    return found


def imported_modules(path: Path, seen: set[Path] | None = None) -> set[str]:
    """Top-level third-party modules imported anywhere in `path` and the dnalm modules it
    imports (transitively)."""
    seen = seen if seen is not None else set()
    if path in seen:
        return set()
    seen.add(path)
    tree = ast.parse(path.read_text())

    # imports under `if TYPE_CHECKING:` never run, and those under `if "x" in sys.modules:`
    # only touch a module something else imported already
    def never_imports(test: ast.expr) -> bool:
        if getattr(test, "id", None) == "TYPE_CHECKING":
            return True
        return isinstance(test, ast.Compare) and any(
            ast.unparse(c) == "sys.modules" for c in test.comparators
        )

    typing_only = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and never_imports(node.test)
        for stmt in node.body
        for sub in ast.walk(stmt)
    }
    mods: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            top = name.split(".")[0]
            if top == "dnalm":
                sub = SCRIPTS / (name.replace(".", "/") + ".py")
                if sub.is_file():
                    mods |= imported_modules(sub, seen)
            elif top not in sys.stdlib_module_names:
                mods.add(top)
    return mods


def test_every_env_parses_and_pins_match_pyproject():
    pins = pyproject_pins()
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert envs
    for env_file in envs:
        env = yaml.safe_load(env_file.read_text())
        assert env["name"].startswith("dnalm-")
        assert "python=3.11" in env["dependencies"]
        for name, version in env_packages(env_file).items():
            if name in pins:
                assert version == pins[name], (
                    f"{env_file.name}: {name} {version} but pyproject.toml pins {pins[name]}"
                )
            elif name not in ("python", "pip"):
                pytest.fail(f"{env_file.name}: {name} is not a pinned dependency of pyproject.toml")


RULES = rules_with_envs()


def test_every_rule_has_an_env_and_a_log():
    """(rules_with_envs asserts conda: and log: for every rule it reads)"""
    names = {rule for rule, _, _ in RULES}
    assert {"extract_cds", "split_cds", "tokenizer", "corpus", "pretrain"} <= names
    assert "verify_sources" in names  # a shell: rule that runs a module of the library


@pytest.mark.parametrize(("rule", "env_file", "script"), RULES, ids=[r[0] for r in RULES])
def test_rule_imports_are_covered_by_its_env(rule, env_file, script):
    provided = set(env_packages(env_file))
    dists = packages_distributions()
    missing = []
    for module in sorted(imported_modules(script)):
        if module == "snakemake":  # provided to scripts by Snakemake itself
            continue
        candidates = {norm(d) for d in dists.get(module, [module])}
        if not candidates & provided:
            missing.append(f"{module} ({', '.join(sorted(candidates))})")
    assert not missing, f"rule {rule}: {env_file.name} lacks {', '.join(missing)}"


#: the SLURM executor plugins: dnalm.training.distributed depends on what the job-step
#: plugin keeps of a job's environment, so both are pinned where the workflow is installed
EXECUTOR_PLUGINS = ("snakemake-executor-plugin-slurm", "snakemake-executor-plugin-slurm-jobstep")


def test_executor_plugins_are_pinned_alike_in_pyproject_and_the_snakemake_env():
    from importlib.metadata import version

    pins = pyproject_pins()
    driver = env_packages(REPO / "envs" / "snakemake.yaml")
    for plugin in EXECUTOR_PLUGINS:
        assert plugin in pins, f"pyproject.toml does not pin {plugin} (== version)"
        assert driver.get(plugin) == pins[plugin], (
            f"envs/snakemake.yaml pins {plugin} {driver.get(plugin)}, pyproject.toml {pins[plugin]}"
        )
        # the tests of the SLURM launch ran against exactly these versions
        assert version(plugin) == pins[plugin], (
            f"{plugin} {version(plugin)} is installed but pyproject.toml pins {pins[plugin]}"
        )
    assert driver.get("snakemake") == pins["snakemake"]
