#!/usr/bin/env bash
# Set up and run the test suite: `bash tests/run.sh [pytest args]` from a fresh clone.
# 1. As root (CI), install the system packages that the SLURM and browser tests need
#    (tests/setup_system.sh; skipped with a note otherwise: those tests then skip).
# 2. Create .venv with the pinned dependencies (pip install -e '.[dev]'; torch==2.13.0).
# 3. Lint (ruff, snakefmt --check, snakemake --lint), then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -f tests/setup_system.sh ]]; then
    bash tests/setup_system.sh
fi
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e '.[dev]'
export PATH="$PWD/.venv/bin:$PATH"
# In CI (root, packages installed above) the SLURM and browser tests must run, not skip.
if [[ "${CI:-}" == "true" ]]; then
    export DNALM_REQUIRE_SLURM=1
    export DNALM_REQUIRE_BROWSER=1
fi
echo "== lint"
ruff check .
ruff format --check .
snakefmt --check workflow/ tests/slurm/smoke/Snakefile
snakemake --lint --configfile tests/config/demo.yaml --snakefile workflow/Snakefile
echo "== tests"
status=0
pytest -n 2 --dist loadfile --durations=25 "$@" || status=$?
if [[ $status -eq 5 ]]; then
    echo "pytest collected no tests" >&2
fi
exit $status
