"""A causal external model with code of its own (tests/support/hub_fixtures.
remote_causal_folder: HyenaDNA's shape, a forward that takes no cache, no position ids and no
attention mask), pinned and opted in, read offline from a Hugging Face cache tree: it
generates through the generation stage's sampling (seeded, reproducible) and scores variants,
and is refused, before its code is imported, when a code file changed after the fetch record.
Remote code runs only in a child process with its own HF_HOME."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dnalm.core import hub
from tests.support import hub_fixtures as hf

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"
REPO_ID = "org/dna-gpt-remote"
CONTIG = "ATGGCGTACGTTAGCCGATCGATCGGCTAGCTAGGATCCGATCGTAGCTAGCTAGGCTAACGTAGCTTGA" * 2


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)


def _pinned(tmp_path: Path, marker: Path | None = None) -> dict:
    """The fixture in a Hub cache under tmp_path, its entry, and the record the fetch rule
    would write for it."""
    home = tmp_path / "hf"
    folder = hf.remote_causal_folder(tmp_path / "src", context=64, marker=marker)
    snap = hf.hub_cache(home, REPO_ID, folder, hf.REVISION)
    spec = {"name": "rgpt", "source": REPO_ID, "revision": hf.REVISION, "objective": "gpt",
            "trust_remote_code": True}  # fmt: skip
    model = hub.external_model("rgpt", spec)
    record = hub.write_provenance(tmp_path / "provenance.json", hub.provenance(model, snap))
    return {"home": home, "snap": snap, "external": {"entry": model.spec(), "record": str(record)}}


def _child(code: str, fx: dict, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{SCRIPTS}{os.pathsep}{REPO}",
           "HF_HOME": str(fx["home"]), "HF_HUB_OFFLINE": "1"}  # fmt: skip
    env.pop("HF_HUB_CACHE", None)
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(fx["external"]), *args],
        capture_output=True, text=True, env=env, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_fixture_has_its_own_model_type_and_code(tmp_path):
    """config.json names a model type transformers does not know and an auto_map to the
    folder's own code files, so only the opt-in path loads it; the entry without the opt-in
    is refused for its auto_map."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    folder = hf.remote_causal_folder(tmp_path / "f", context=64)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] not in CONFIG_MAPPING
    assert config["auto_map"]["AutoModelForCausalLM"].startswith("modeling_dna_gpt.")
    assert all((folder / name).is_file() for name in hf.CAUSAL_CODE_FILES)
    model = hub.external_model("rgpt", {"source": str(folder), "objective": "gpt"})
    with pytest.raises(Exception, match="auto_map"):
        hub.check_folder_files(model, folder)


GENERATE = """
import json, sys
from pathlib import Path
from dnalm.evaluation.inference import load_lm
from dnalm.generation.run import generate_sets
from dnalm.generation.sampling import next_tokens
external, base = json.loads(sys.argv[1]), Path(sys.argv[2])
(base / "test.fa").write_text("".join(f">t{i}\\n{sys.argv[3][i:i + 60]}\\n" for i in range(8)))
(base / "train.fa").write_text(f">r\\n{sys.argv[3]}\\n")
settings = {"n_prefix": 3, "n_free": 2, "prefix_nt": 9, "max_new_nt": 70, "seed": 4,
            "temperature": 1.0, "top_k": None, "top_p": None, "markov_order": 2}
out = {}
for run in ("a", "b"):
    counts = generate_sets(None, [base / "test.fa"], [base / "train.fa"], base / run,
                           settings, unit=1, cds=False, external=external)
    out[run] = (base / run / "samples.fa.gz").read_bytes().hex()
lm = load_lm(None, "cpu", external)
print(json.dumps({"same": out["a"] == out["b"], "counts": counts, "context": lm.context,
                  "cached": lm.cached, "class": type(lm.model).__name__,
                  "next": len(next_tokens(lm, "ATG", 3))}))
"""


def test_remote_causal_model_generates_offline_from_the_cache(tmp_path):
    """The generation stage's sampling (generate_sets, what rule generate runs) on the pinned
    remote-code model read offline: its own class (no cache: every token runs the whole
    sequence), its context from max_seq_len, and the same samples twice from one seed."""
    import gzip

    marker = tmp_path / "marker"
    fx = _pinned(tmp_path, marker)
    out = _child(GENERATE, fx, str(tmp_path), CONTIG)
    assert out["class"] == "DnaGptForCausalLM"
    assert (out["context"], out["cached"]) == (64, False)
    assert out["same"]
    assert out["counts"]["model"] == 5
    assert out["next"] == 3
    assert marker.read_text() == "imported"  # its own code ran
    text = gzip.decompress((tmp_path / "a" / "samples.fa.gz").read_bytes()).decode()
    seqs = [line for line in text.splitlines() if not line.startswith(">")]
    assert len(seqs) == 5
    assert all(set(s) <= set("ACGTN") for s in seqs)


def test_remote_causal_code_changed_after_the_fetch_is_refused_before_import(tmp_path):
    """A code file of the snapshot edited after the fetch record: generation stops naming
    the file, before the module is imported (its import writes the marker); restored, the
    same call samples (so the marker does show an import)."""
    marker = tmp_path / "marker"
    fx = _pinned(tmp_path, marker)
    blob = (fx["snap"] / "modeling_dna_gpt.py").resolve()
    original = blob.read_text()
    blob.write_text(original.replace("class Block", "# edited\nclass Block"))
    code = """
import json, sys
from dnalm.core.errors import DnalmError
from dnalm.evaluation.inference import load_lm
from dnalm.generation.sampling import generate
try:
    lm = load_lm(None, "cpu", json.loads(sys.argv[1]))
except DnalmError as err:
    print(json.dumps({"error": str(err)}))
else:
    print(json.dumps({"seqs": generate(lm, "ATG", n=2, max_new_tokens=8, seed=1)}))
"""
    out = _child(code, fx)
    assert "modeling_dna_gpt.py" in out["error"]
    assert "was recorded when the model was fetched" in out["error"]
    assert not marker.exists()
    blob.write_text(original)
    out = _child(code, fx)
    assert len(out["seqs"]) == 2
    assert all(s.startswith("ATG") for s in out["seqs"])
    assert marker.read_text() == "imported"


VEP = """
import json, sys
from pathlib import Path
import pandas as pd
from dnalm.evaluation.vep import run_vep
external, base, contig = json.loads(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
head = "##fileformat=VCFv4.2\\n#CHROM\\tPOS\\tID\\tREF\\tALT\\tQUAL\\tFILTER\\tINFO\\n"
ref = contig[39]
alt = "A" if ref != "A" else "C"
with_alt = contig[:39] + alt + contig[40:]
scores = []
for name, seq, r, a in (("fwd", contig, ref, alt), ("back", with_alt, alt, ref)):
    (base / f"{name}.fa").write_text(f">c1\\n{seq}\\n")
    (base / f"{name}.vcf").write_text(head + f"c1\\t40\\tsnv\\t{r}\\t{a}\\t.\\t.\\t.\\n")
    run_vep(None, base / f"{name}.vcf", base / f"{name}.fa", base / f"{name}.tsv",
            window=32, external=external)
    scores.append(float(pd.read_csv(base / f"{name}.tsv", sep="\\t")["score"].iloc[0]))
print(json.dumps({"scores": scores}))
"""


def test_remote_causal_model_scores_a_vcf(tmp_path):
    """The VEP path (run_vep, what rule vep_score runs) with the pinned remote-code causal
    model: the log-likelihood ratio of ALT over REF, computed without a cache (both windows
    whole), changes sign when the genome carries ALT and the VCF swaps them."""
    fx = _pinned(tmp_path)
    forward, backward = _child(VEP, fx, str(tmp_path), CONTIG)["scores"]
    assert forward != 0.0
    assert backward == pytest.approx(-forward, abs=1e-5)


def test_without_a_cache_the_same_samples_and_scores_as_with_it(tmp_path):
    """The native causal fixture sampled and scored as a model whose forward takes no cache
    (the whole sequence at every call) gives what it gives with its cache: the same seeded
    samples, the same log-likelihood differences."""
    from dnalm.evaluation.inference import LoadedModel, ll_differences
    from dnalm.generation.sampling import generate

    folder = hf.causal_folder(tmp_path / "gpt", context=64)
    model = hub.external_model("gpt", {"source": str(folder), "objective": "gpt"})
    record = hub.write_provenance(tmp_path / "p.json", hub.provenance(model, folder))
    lm = LoadedModel.from_external({"entry": model.spec(), "record": str(record)})
    assert lm.cached
    ids = [lm.encode(CONTIG[i : i + 20]) for i in range(0, 40, 5)]
    pairs = list(itertools.pairwise(ids))
    changed = 4 + (ids[0][10] - 3) % 4  # another nucleotide's id (A C G T: 4-7)
    pairs.append((ids[0], [*ids[0][:10], changed, *ids[0][11:]]))  # a shared start
    kwargs = {"n": 4, "max_new_tokens": 80, "seed": 2}  # past the context of 64
    with_cache = (generate(lm, "ATGC", **kwargs), ll_differences(lm, pairs))
    lm.inputs = lm.inputs - {"past_key_values"}
    assert not lm.cached
    without = (generate(lm, "ATGC", **kwargs), ll_differences(lm, pairs))
    assert without[0] == with_cache[0]
    assert without[1] == pytest.approx(with_cache[1], abs=1e-4)
