"""Every model folder the workflow writes loads whole with the transformers Auto classes,
offline, after the project's explicit registration (dnalm.modeling.loader.register_model_types)
and nothing else: AutoConfig, AutoTokenizer and the Auto model class that config.json's
architecture names. The folders are those of a tiny pretraining run, of a fine-tuning run
on it, and of a tiny DNA+text stage (the DNA+text model, whose unified tokenizer sits in its
``tokenizer/`` subfolder, and the two DNA-only models), made by the stages' own code."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from dnalm.finetuning.finetune import finetune
from dnalm.multimodal.corpus import build_pairs
from dnalm.multimodal.pipeline import run as run_dnatext
from dnalm.tokenization.build import build_tokenizer
from dnalm.training.pretrain import pretrain
from tests.support.lm_corpus import make_corpus
from tests.support.tiny_models import gc_at_table

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"

PRETRAIN = {
    "max_steps": 4,
    "micro_batch_size": 8,
    "eval_interval": 2,
    "log_interval": 2,
    "warmup_steps": 1,
    "eval_batches": 1,
    "threads": 1,
}
DNATEXT = {
    "enabled": True,
    "device": "cpu",
    "text_tokenizer": "wordpiece",
    "text_vocab_size": 200,
    "model": {
        "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "base_dim": 8,
        "base_layers": 1, "base_heads": 2,
    },
    "train": {
        "steps": 2, "batch_size": 4, "max_len": 48, "lr": 0.002, "weight_decay": 0.01,
        "mask_prob": 0.15, "seed": 0,
    },
    "evaluation": {"max_candidates": 4, "max_queries": 4, "max_test_pairs": 8},
}  # fmt: skip
PRODUCTS = ["dna polymerase", "ribosomal protein l2", "elongation factor tu", "dna gyrase"]


def dnatext_inputs(root: Path) -> tuple[Path, Path]:
    """A pairs table of two species (CDS tables and split FASTAs as the workflow writes
    them, through build_pairs) and a BPE DNA tokenizer folder."""
    rng = random.Random(0)
    tables, fastas, species = [], {}, {}
    for s, name in (("aus", "Aus one"), ("bus", "Bus two")):
        table = root / f"{s}.tsv"
        lines = ["sample\tcds_id\tgene\tproduct\tstatus"]
        recs: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
        for i in range(12):
            lines.append(f"{s}\t{s}{i}\tg{i}\t{PRODUCTS[i % 4]}\tkept")
            recs["test" if i % 4 == 0 else "train"].append(f"{s}{i}")
        table.write_text("\n".join(lines) + "\n")
        tables.append(table)
        fastas[s] = {}
        for split, ids in recs.items():
            path = root / f"{s}.{split}.fa"
            seqs = ("".join(rng.choice("ACGT") for _ in range(60)) for _ in ids)
            path.write_text("".join(f">{r}\n{q}\n" for r, q in zip(ids, seqs, strict=True)))
            fastas[s][split] = path
        species[s] = name
    pairs = build_pairs(["aus", "bus"], tables, fastas, species, max_dna_nt=60)
    pairs_path = root / "pairs.tsv"
    pairs.to_csv(pairs_path, sep="\t", index=False)
    dna = build_tokenizer(
        {"type": "bpe", "vocab_size": 48},
        ["".join(rng.choice("ACGT") for _ in range(200)) for _ in range(20)],
    )
    dna.save(root / "bpe")
    return pairs_path, root / "bpe"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """The folders of a tiny pretraining, fine-tuning and DNA+text run under one root."""
    root = tmp_path_factory.mktemp("results")
    corpus = make_corpus(root / "corpus", n_seqs=(30, 10, 10))
    # the corpus with dnalm's nucleotide tokenizer (the same ids), as the tokenize rule writes
    nuc = build_tokenizer({"type": "nucleotide"})
    nuc.save(corpus / "tokenizer")
    meta = json.loads((corpus / "meta.json").read_text())
    (corpus / "meta.json").write_text(json.dumps({**meta, "tokenizer_hash": nuc.hash}))
    pretrain(corpus, root / "models" / "gpt", "gpt", "tiny", {}, PRETRAIN, resume=False)
    pretrain(corpus, root / "models" / "mlm", "mlm", "tiny", {}, PRETRAIN, resume=False)
    settings = {"batch_size": 16, "max_epochs": 1, "threads": 1, "warmup_steps": 1}
    finetune(root / "models" / "gpt", gc_at_table(40), root / "finetune" / "t" / "r", settings)
    lora = {**settings, "regime": "lora"}
    finetune(root / "models" / "mlm", gc_at_table(40), root / "finetune" / "t" / "lora", lora)
    pairs, dna = dnatext_inputs(tmp_path_factory.mktemp("dnatext_inputs"))
    run_dnatext(pairs, dna, DNATEXT, root / "dnatext" / "models")
    return root


LOAD = """
import json, sys
from pathlib import Path
from transformers import (AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM,
                          AutoTokenizer)
from dnalm.modeling.loader import register_model_types
register_model_types()
out = {}
for folder in sys.argv[1:]:
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    arch = (config.architectures or [""])[0]
    auto = (AutoModelForCausalLM if arch.endswith("ForCausalLM")
            else AutoModelForMaskedLM if arch.endswith("ForMaskedLM") else AutoModel)
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model, info = auto.from_pretrained(folder, local_files_only=True, output_loading_info=True)
    text = "dna polymerase <dna>ACGTTGCA</dna>" if config.model_type == "dnalm_dnatext" and \\
        getattr(config, "text_vocab_size", 0) else "ACGTTGCAAC"
    batch = tok([text], return_tensors="pt")
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
    out[Path(folder).relative_to(Path(sys.argv[1]).parents[2]).as_posix()] = {
        "model": type(model).__name__, "tokenizer": type(tok).__name__,
        "missing": sorted(info["missing_keys"]), "ids": batch["input_ids"][0].tolist(),
        "shape": list(logits.shape), "vocab": config.vocab_size, "len": len(tok),
    }
print(json.dumps(out))
"""


def test_every_written_model_folder_loads_whole_with_the_auto_classes(written):
    folders = sorted(
        p.parent
        for p in written.rglob("config.json")
        if "checkpoints" not in p.parts and not p.parent.name.startswith(".")
    )
    names = {p.relative_to(written).as_posix() for p in folders}
    assert names == {
        "models/gpt",
        "models/mlm",
        "finetune/t/r/model",
        "finetune/t/lora/model",
        "dnatext/models/dnatext",
        "dnatext/models/dna_basewise",
        "dnatext/models/dna_table",
    }
    # a fresh, offline process: nothing registered but what register_model_types does
    proc = subprocess.run(
        [sys.executable, "-c", LOAD, *map(str, folders)],
        capture_output=True,
        text=True,
        check=False,
        env={
            "PYTHONPATH": str(SCRIPTS),
            "PATH": "/usr/bin:/bin",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HOME": str(written / "hf_home"),
        },
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    got = {k.removeprefix(written.name + "/"): v for k, v in got.items()}
    assert set(got) == names, sorted(got)
    for name, res in got.items():
        assert res["missing"] == [], name  # no weight left at random
        assert res["len"] == res["vocab"], name  # the tokenizer is the model's
        assert res["shape"][-1] == res["vocab"] or name.startswith("finetune"), name
    dnatext = got["dnatext/models/dnatext"]
    assert dnatext["model"] == "DNATextForMaskedLM"
    assert dnatext["tokenizer"] == "DNATextPreTrainedTokenizer"
    # the ids are the unified tokenizer's own: text, then the DNA ids past the text vocabulary
    from dnalm.multimodal.tokenizer import DNATextTokenizer

    unified = DNATextTokenizer.load(written / "dnatext/models/dnatext/tokenizer")
    want = unified.encode("dna polymerase <dna>ACGTTGCA</dna>")["input_ids"].tolist()
    assert dnatext["ids"] == want
    assert any(i >= unified.offset for i in want)
    assert got["models/gpt"]["model"].endswith("ForCausalLM")
    assert got["models/mlm"]["model"].endswith("ForMaskedLM")
