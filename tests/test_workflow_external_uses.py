"""The config of tests/support/hub_fixtures.workflow_externals plans external models into
every stage of the real workflow (a dry run on the embedded demo): a native NT-v1-shaped model
and a pinned remote-code NT-v2-shaped one from a Hugging Face cache read offline, fine-tuned
(frozen, LoRA), probed and scoring variants, and two causal ones that generate and score
variants: a character-level GPT-2 and a pinned remote-code model in HyenaDNA's shape. The
shared-data run uses the same config and runs them all
(tests/test_workflow_e2e.py::test_external_models_sit_in_the_same_tables)."""

from __future__ import annotations

from tests.support import hub_fixtures as hf
from tests.support.workflow_runner import REPO, deep_merge, fail_message, make_workdir, snakemake

TARGETS = (
    "results/finetune/species_fragments/comparison.tsv",
    "results/probe/probe_table.tsv",
    "results/vep/phiX174/auroc.tsv",
    "results/generate/summary.tsv",
)


def workdir(tmp_path):
    ext = hf.workflow_externals(
        tmp_path / "ext", tasks=["species_fragments"], vep_models=[], generate_models=["gpt_nt"]
    )
    short = {"max_steps": 4, "eval_interval": 2, "eval_batches": 1, "micro_batch_size": 8}
    replace = {
        "splits": {"method": "identity"},
        "tokenizers": {"nucleotide": {"type": "nucleotide"}},
        "corpora": {"cds": {"source": "cds"}},
        "reproduce": {"rows": []},
        "tasks": {
            "species_fragments": {"n_train": 40, "n_validation": 16, "n_test": 40},
            "tf_binding": {"sequences": None},
            "sequence_tasks": {},
        },
        "pretrain": {
            "models": {
                "gpt_nt": {
                    "objective": "gpt",
                    "tokenizer": "nucleotide",
                    "preset": "tiny",
                    "train": short,
                }
            },
            "threads": 1,
        },
        "finetune": {
            "runs": {},
            "train": {
                "max_epochs": 1,
                "batch_size": 16,
                "device": "cpu",
                "threads": 1,
                "lora_r": 2,
            },
            "per_task": {},
            "gpus": 0,
            "threads": 1,
        },
        "baselines": {"onehot_cnn": {"enabled": False}, "kmer": {"enabled": True, "k": [3]}},
        "probe": {
            "models": [],
            "random_init": False,
            "finetuned": [],
            "external": {},
            "umap": {"max_points": 40},
        },
        "generate": {
            "enabled": True,
            "n_prefix": 2,
            "n_free": 1,
            "prefix_nt": 12,
            "max_new_nt": 24,
            "reference_model": "gpt_nt",
        },
        "vep": {"enabled": True, "sample": "phiX174", "n_per_class": 4, "window": 48},
        "interpret": {"enabled": False},
        "dnatext": {"enabled": False},
        "walks": {"enabled": False},
        "gene_completion": {"enabled": False},
        "robustness": {"enabled": False},
        "sweeps": {},
    }
    for key, value in ext["config"].items():
        replace[key] = deep_merge(replace.get(key, {}), value)
    # three small samples: two species for the species task, phiX174's CDS for VEP
    keep = ["mgallisepticum", "phageT4", "phiX174"]
    wd = make_workdir(
        tmp_path / "wd", keep=keep, test_config=REPO / "tests/config/demo.yaml", replace=replace
    )
    return wd, ext["env"]


def test_workflow_externals_config_is_planned(tmp_path):
    wd, env = workdir(tmp_path)
    proc = snakemake(wd, "-n", *TARGETS, "--quiet", "rules", env=env)
    assert proc.returncode == 0, fail_message(proc)
    rules = set(proc.stdout.split()) | set(proc.stderr.split())
    assert {"fetch_external_model", "finetune", "embed", "vep_score", "generate"} <= rules
