# The plan of the run (dnalm.plan: config and sample sheet, checked), the wildcard
# constraints and the Python of the `shell:` rules. No rules here; each rule file reads what
# it needs from PLAN.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.settings.types import DeploymentMethod

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from dnalm.core.errors import DnalmError  # noqa: E402
from dnalm.core.smk import ShellText, job_python  # noqa: E402
from dnalm.genome.samples import load_schema, reserved_sample_ids  # noqa: E402
from dnalm.plan import load  # noqa: E402
from dnalm.plan.wildcards import alternatives, sample_constraint  # noqa: E402

try:  # every config and sample-sheet check (dnalm.plan.load lists them in order)
    PLAN = load(config, config_files=workflow.configfiles)
except DnalmError as err:
    raise WorkflowError(str(err)) from None
for _note in PLAN.notes():
    logger.info(_note)
for _note in PLAN.rerun_changed_sources():  # content replaced under an old mtime
    logger.warning(_note)

# `{params.py} -m dnalm.<stage>.<module>` (params: py=PY) in a shell: rule runs the library
# with the conda env's python under --sdm conda, else with the Python that runs Snakemake
# (dnalm.core.smk.job_python; a ShellText, so not a param that reruns jobs when it changes)
_DEPLOY = getattr(workflow.deployment_settings, "deployment_method", None) or ()
PY = ShellText(
    job_python(DeploymentMethod.CONDA in _DEPLOY, Path(workflow.basedir) / "scripts")
)

# the sheet's sample-ID pattern, not the list of samples (dnalm.plan.wildcards says why)
_SAMPLE_SCHEMA = load_schema()
_TASKS = ["species_fragments", "tf_binding", *PLAN.sequence_tasks, *PLAN.suite_tasks]


wildcard_constraints:
    sample=sample_constraint(
        _SAMPLE_SCHEMA["properties"]["sample"]["pattern"],
        reserved_sample_ids(_SAMPLE_SCHEMA),
    ),
    split="train|validation|test",
    tok=alternatives(PLAN.tokenizers),
    corpus=alternatives(PLAN.corpora),
    wcorpus=alternatives(PLAN.window_corpora),
    tcorpus=alternatives(PLAN.task_corpora),
    task=alternatives(PLAN.sequence_tasks),
    stask=alternatives(PLAN.suite_tasks),
    suite=alternatives(PLAN.suite_names()),
    model=alternatives(PLAN.models),
    ftask=alternatives(_TASKS),
    run=alternatives(PLAN.runs),
    cnn=alternatives(PLAN.cnn_runs),
    sweep=alternatives(PLAN.sweeps),
    k=r"\d+",
    eregime="pretrained|random-init|fine-tuned|external|dnatext",
    pkind="svm|mlp|hgb",
    ename=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    itask=alternatives(_TASKS),
    taskfile=alternatives(PLAN.task_files),
    irun=r"[^/]+",
