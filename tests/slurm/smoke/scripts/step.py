"""One step of the SLURM smoke workflow: a deterministic computation plus an environment record.

prepare writes the integers 1..1000; pretrain and embed each map every number n of their input
to (n * n + 7) % 1009 (any deterministic function would do: the test compares the results of
a SLURM run with a local run byte for byte). The env record says where the job ran.
"""

import json
import os
import shutil
import socket
import sys

smk = snakemake

if smk.rule == "prepare" and smk.params.fail_first_attempt and smk.resources.try_number == 1:
    sys.exit("deliberate failure on the first attempt (config fail_first_attempt)")
if smk.rule == "prepare":
    values = list(range(1, 1001))
else:
    with open(smk.input[0]) as handle:
        values = [(int(line) ** 2 + 7) % 1009 for line in handle]
with open(smk.output.data, "w") as handle:
    handle.write("".join(f"{v}\n" for v in values))

record = {
    "rule": smk.rule,
    "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "slurm_job_gpus": os.environ.get("SLURM_JOB_GPUS"),
    "python": sys.executable,
    "snakemake_on_path": shutil.which("snakemake"),
    "host": socket.gethostname(),
    "threads": smk.threads,
    "resources": {k: v for k, v in smk.resources.items() if isinstance(v, (int, str))},
}
with open(smk.output.env, "w") as handle:
    json.dump(record, handle, indent=2, sort_keys=True)
with open(smk.log[0], "w") as handle:
    handle.write(f"{smk.rule}: {len(values)} values\n")
