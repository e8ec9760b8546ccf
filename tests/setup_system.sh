#!/usr/bin/env bash
# Install the Debian packages that some tests need, when run as root and they are missing:
#   slurm-wlm munge  -> tests/test_workflow_slurm.py (a real single-node SLURM, tests/support/slurm_cluster.py)
#   chromium         -> the browser test of the Snakemake report
# Runs `apt-get update` at most once. As a non-root user it changes nothing and says so: the
# tests that need these packages then skip with the reason.
set -euo pipefail

packages=(slurm-wlm munge chromium)
# The command each package provides (how we tell whether it is installed).
declare -A provides=([slurm-wlm]=slurmctld [munge]=munged [chromium]=chromium)

missing=()
for pkg in "${packages[@]}"; do
    if ! PATH="$PATH:/usr/sbin:/sbin" command -v "${provides[$pkg]}" >/dev/null 2>&1; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "setup_system: system packages present (${packages[*]})"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "setup_system: not root, not installing ${missing[*]};" \
        "the SLURM/browser tests will skip (run this script as root to enable them)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_system: no apt-get (not Debian/Ubuntu); install ${missing[*]} yourself" >&2
    exit 0
fi
echo "setup_system: apt-get update"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
echo "setup_system: apt-get install ${missing[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup_system: installed ${missing[*]}"
