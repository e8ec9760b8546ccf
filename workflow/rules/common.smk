# The plan of the run (dnalm.plan: config and sample sheet, checked) and the wildcard
# constraints. No rules here; each rule file reads what it needs from PLAN.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))

from dnalm.core.errors import DnalmError  # noqa: E402
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
