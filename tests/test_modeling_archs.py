"""The architectures behind the `arch` key (dnalm.modeling.models): every one builds, saves and
reloads offline with its Auto class; packed windows keep each sequence to itself (rotary
models restart positions per segment, ModernBERT keeps its sliding window); state-space models
refuse packed windows; a short pretraining run of each new arch learns; fine-tuning (with
LoRA), embeddings and scoring/generation work on them."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

from dnalm.core.errors import ConfigError
from dnalm.evaluation import inference as inf
from dnalm.evaluation.embed import embed_table, load_embeddings
from dnalm.finetuning import finetune as ft
from dnalm.generation import sampling as smp
from dnalm.kinds.archs import ARCHS, check_presets
from dnalm.modeling import models as dm
from dnalm.modeling.archs.modernbert import modernbert_masks
from dnalm.modeling.flops import SSM_ARCHS, training_flops_per_token
from dnalm.modeling.loader import load_model_folder
from dnalm.tokenization import build as dtok
from dnalm.training.pretrain import pretrain
from tests.support.lm_corpus import BOS, EOS, PAD, VOCAB, make_corpus, markov_sequences
from tests.support.tiny_models import gc_at_table

REPO = Path(__file__).resolve().parents[1]
#: every architecture of the registry (a new one is tested here without listing it), and
#: those that are not their objective's default
ALL = [(a.objective, a.name) for a in ARCHS]
NEW = [(a.objective, a.name) for a in ARCHS if not a.default]
ATTENTION = [(o, a) for o, a in ALL if a not in SSM_ARCHS]
SPECIAL = {"pad_id": PAD, "bos_id": BOS, "eos_id": EOS}
# float32 on a CPU: two forwards of the same segment differ only by summation order
ATOL = 1e-5


def _tiny(objective, arch, overrides=None):
    torch.manual_seed(0)
    spec = dm.resolve_arch(objective, "tiny", overrides or {}, arch)
    return dm.build_model(objective, spec, len(VOCAB), SPECIAL).eval()


# ----------------------------------------------------------------------------- tables


def test_every_preset_resolves_and_the_defaults_are_opt_and_bert():
    for kind in ARCHS:
        for preset in kind.presets:
            dm.resolve_arch(kind.objective, preset, {}, kind.name)
    assert dm.resolve_arch("gpt", "tiny")["arch"] == "opt"
    assert dm.resolve_arch("mlm", "tiny")["arch"] == "bert"


def test_wrong_arch_unused_and_foreign_keys_are_refused():
    with pytest.raises(ConfigError, match=r"'modernbert' .*is an mlm architecture"):
        dm.resolve_arch("gpt", "tiny", {}, "modernbert")
    with pytest.raises(ConfigError, match="unknown gpt_neox preset 'seed'"):
        dm.resolve_arch("gpt", "seed", {}, "gpt_neox")
    with pytest.raises(ConfigError, match="'n_head' does not apply to mamba: mamba has no"):
        dm.resolve_arch("gpt", "tiny", {"n_head": 4}, "mamba")
    with pytest.raises(ConfigError, match="'dropout' does not apply to llama"):
        dm.resolve_arch("gpt", "tiny", {"dropout": 0.1}, "llama")
    with pytest.raises(ConfigError, match="'state_size' only applies to mamba, mamba2, not llama"):
        dm.resolve_arch("gpt", "tiny", {"state_size": 8}, "llama")
    # the workflow config: an mlm arch under gpt names the model; mamba refuses packing
    cfg = {"pretrain": {"models": {"m1": {"objective": "gpt", "arch": "modernbert"}}}}
    with pytest.raises(ConfigError, match=r"pretrain\.models\.m1\.arch: 'modernbert' is not"):
        check_presets(cfg)
    ssm = {"objective": "gpt", "arch": "mamba", "preset": "tiny", "tokenizer": "t"}
    with pytest.raises(ConfigError, match=r"pretrain\.models\.s: arch mamba cannot train on pa"):
        check_presets({"pretrain": {"models": {"s": ssm}}})
    check_presets({"corpus": {"packing": "padded"}, "pretrain": {"models": {"s": ssm}}})
    # a corpus of its own with padded windows, beside packed ones for the attention models
    own = {
        "corpora": {"cds": {"source": "cds"}, "g": {"source": "genome", "packing": "padded"}},
        "pretrain": {"models": {"s": {**ssm, "corpus": "g"}, "c": {**ssm, "corpus": "cds"}}},
    }
    with pytest.raises(ConfigError, match=r"models\.c: .*set corpora\.cds\.packing: padded"):
        check_presets(own)
    del own["pretrain"]["models"]["c"]
    check_presets(own)
    bad = {**ssm, "arch": "llama", "preset": "130m"}
    with pytest.raises(ConfigError, match="unknown llama preset '130m'; choose one of tiny"):
        check_presets({"pretrain": {"models": {"x": bad}}})


def test_published_shapes_have_the_published_parameter_counts():
    # Pythia-70m and -160m (GPT-NeoX, vocabulary 50304, untied): 70,426,624 and 162,322,944
    # parameters (the model cards' totals); built on the meta device (no memory)
    for preset, total in (("70m", 70_426_624), ("160m", 162_322_944)):
        spec = dm.resolve_arch("gpt", preset, {}, "gpt_neox")
        with torch.device("meta"):
            model = dm.build_model("gpt", spec, 50304, SPECIAL)
        assert dm.count_parameters(model)["total"] == total, preset
    spec = dm.resolve_arch("mlm", "base", {}, "modernbert")
    assert (spec["n_layer"], spec["d_model"], spec["n_head"], spec["d_ff"]) == (22, 768, 12, 1152)
    config = dm.build_config("mlm", spec, 50368, SPECIAL)
    full, local = "full_attention", "sliding_attention"
    assert config.layer_types[:4] == [full, local, local, full]  # global every 3rd
    assert config.local_attention == 128
    mamba = dm.resolve_arch("gpt", "130m", {}, "mamba")
    assert (mamba["n_layer"], mamba["d_model"], mamba["state_size"]) == (24, 768, 16)


def test_context_and_flops_of_a_model_without_a_position_table():
    model = _tiny("gpt", "mamba", {"context": 300})
    assert dm.model_context(model) == 300
    assert dm.objective_of(model) == "gpt"
    assert dm.objective_of(_tiny("mlm", "modernbert")) == "mlm"
    spec = dm.resolve_arch("gpt", "tiny", {}, "mamba")
    n = dm.count_parameters(model)["non_embedding"]
    # 6 N + 3 x 9 x n_layer x (expand x d_model) x state_size, independent of the window
    expected = 6 * n + 27 * 2 * 128 * 16
    assert training_flops_per_token(spec, n, 64) == training_flops_per_token(spec, n, 8)
    assert math.isclose(training_flops_per_token(spec, n, 64), expected)


# ----------------------------------------------------------------------------- save / reload


@pytest.mark.parametrize(("objective", "arch"), ALL)
def test_tiny_reloads_offline_with_its_auto_class_and_same_logits(objective, arch, tmp_path):
    model = _tiny(objective, arch)
    params = dm.count_parameters(model)["total"]
    assert 30_000 < params < 200_000, params  # comparable to the opt/bert tiny (~0.13 M)
    model.save_pretrained(tmp_path, safe_serialization=True)
    auto = AutoModelForCausalLM if objective == "gpt" else AutoModelForMaskedLM
    again = auto.from_pretrained(tmp_path, local_files_only=True).eval()
    assert type(again) is type(model)
    assert dm.model_context(again) == 512
    tokens = torch.randint(5, len(VOCAB), (2, 24))
    pos = torch.arange(24).expand(2, -1)
    with torch.no_grad():
        a, b = dm.forward_logits(model, tokens, pos), dm.forward_logits(again, tokens, pos)
    assert a.shape == (2, 24, len(VOCAB))
    torch.testing.assert_close(a, b, atol=0, rtol=0)


# ----------------------------------------------------------------------------- packed windows


@pytest.mark.parametrize(("objective", "arch"), ATTENTION)
def test_packed_segments_see_only_themselves(objective, arch):
    # ModernBERT with a local window of 8 (4 either side) shorter than the segments, so its
    # local layer's window and the segment mask both matter
    over = {"local_attention": 8} if arch == "modernbert" else {}
    model = _tiny(objective, arch, over)
    n1, n2 = 23, 17
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(5, len(VOCAB), (1, n1 + n2), generator=g)
    pos = torch.cat([torch.arange(n1), torch.arange(n2)])[None]
    changed = tokens.clone()
    changed[0, n1:] = torch.randint(5, len(VOCAB), (n2,), generator=g)
    with torch.no_grad():
        packed = dm.forward_logits(model, tokens, pos)[0]
        packed2 = dm.forward_logits(model, changed, pos)[0]
        alone1 = dm.forward_logits(model, tokens[:, :n1], torch.arange(n1)[None])[0]
        alone2 = dm.forward_logits(model, tokens[:, n1:], torch.arange(n2)[None])[0]
        # the model's own masks and positions on one sequence (no mask passed)
        plain2 = model(input_ids=tokens[:, n1:]).logits[0]
    assert not torch.allclose(packed[n1:], packed2[n1:])  # segment 2 did change
    torch.testing.assert_close(packed[:n1], packed2[:n1], atol=ATOL, rtol=0)
    torch.testing.assert_close(packed[:n1], alone1, atol=ATOL, rtol=0)
    torch.testing.assert_close(packed[n1:], alone2, atol=ATOL, rtol=0)
    torch.testing.assert_close(alone2, plain2, atol=ATOL, rtol=0)


def test_modernbert_local_layers_keep_their_window_in_packed_batches():
    model = _tiny("mlm", "modernbert", {"local_attention": 8})
    pos = torch.arange(30)[None]
    masks = modernbert_masks(pos, model.config, "sdpa", torch.float32)
    local, full = masks["sliding_attention"][0, 0], masks["full_attention"][0, 0]
    assert full.all()
    assert local[10, 6:15].all()
    assert not local[10, :6].any()
    assert not local[10, 15:].any()
    # with both layers local (window 4 either side, 2 layers: reach 8) a change at token 10
    # reaches tokens 2..18 and no further; the first layer is global in ModernBERT, so it is
    # switched to local here
    model.model.layers[0].attention_type = "sliding_attention"
    tokens = torch.randint(5, len(VOCAB), (1, 30))
    changed = tokens.clone()
    changed[0, 10] = 5 if int(tokens[0, 10]) != 5 else 6
    with torch.no_grad():
        a = dm.forward_logits(model, tokens, pos)[0]
        b = dm.forward_logits(model, changed, pos)[0]
    torch.testing.assert_close(a[:2], b[:2], atol=0, rtol=0)
    torch.testing.assert_close(a[19:], b[19:], atol=0, rtol=0)
    assert not torch.equal(a[2], b[2])  # the edges of the reach do change
    assert not torch.equal(a[18], b[18])


@pytest.mark.parametrize("arch", sorted(SSM_ARCHS))
def test_state_space_models_refuse_packed_windows(arch, tmp_path):
    model = _tiny("gpt", arch)
    tokens = torch.randint(5, len(VOCAB), (1, 20))
    packed = torch.cat([torch.arange(12), torch.arange(8)])[None]
    with pytest.raises(ValueError, match=f"{arch} cannot run packed windows"):
        dm.forward_logits(model, tokens, packed)
    # one sequence followed by padding (position 0) is what a padded corpus holds: allowed
    padded = torch.cat([torch.arange(12), torch.zeros(8, dtype=torch.long)])[None]
    with torch.no_grad():
        out = dm.forward_logits(model, tokens, padded)
        alone = dm.forward_logits(model, tokens[:, :12], torch.arange(12)[None])
    torch.testing.assert_close(out[:, :12], alone, atol=ATOL, rtol=0)  # causal: pads come after
    corpus = make_corpus(tmp_path / "corpus", n_seqs=(20, 6, 6))  # packed
    with pytest.raises(ConfigError, match=f"arch {arch} cannot train on packed windows"):
        pretrain(corpus, tmp_path / "m", "gpt", "tiny", {}, {"max_steps": 2}, arch=arch)
    assert not (tmp_path / "m" / "run.json").exists()


# ----------------------------------------------------------------------------- pretraining


def _padded_corpus(folder: Path, block: int = 32) -> Path:
    """The fixture corpus rewritten with one sequence (or chunk of one) per padded window."""
    make_corpus(folder, block_size=block)
    meta = json.loads((folder / "meta.json").read_text())
    rng = np.random.default_rng(0)
    for split, n in (("train", 120), ("validation", 30), ("test", 30)):
        rows = []
        for seq in markov_sequences(n, rng):
            ids = [BOS, *(VOCAB[c] for c in seq), EOS]
            rows += [ids[i : i + block] for i in range(0, len(ids), block)]
        tokens = np.full((len(rows), block), PAD, dtype=np.uint16)
        positions = np.zeros((len(rows), block), dtype=np.uint16)
        for r, ids in enumerate(rows):
            tokens[r, : len(ids)] = ids
            positions[r, : len(ids)] = np.arange(len(ids))
        np.save(folder / f"{split}.tokens.npy", tokens)
        np.save(folder / f"{split}.positions.npy", positions)
        meta[split].update(n_windows=len(rows), n_tokens=int((tokens != PAD).sum()))
    meta["packing"] = "padded"
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return folder


TRAIN = {
    "max_steps": 24,
    "micro_batch_size": 8,
    "eval_interval": 12,
    "log_interval": 6,
    "warmup_steps": 3,
    "eval_batches": 2,
    "threads": 1,
    "lr": 3e-3,
}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("archs")
    packed = make_corpus(root / "packed")
    padded = _padded_corpus(root / "padded")
    out = {}
    for objective, arch in NEW:
        corpus = padded if arch in SSM_ARCHS else packed
        folder = root / arch
        run = pretrain(corpus, folder, objective, "tiny", {}, TRAIN, resume=False, arch=arch)
        out[arch] = (folder, run)
    return out


@pytest.mark.parametrize(("objective", "arch"), NEW)
def test_short_pretraining_learns_and_records_the_arch(pretrained, objective, arch):
    folder, _run = pretrained[arch]
    with open(folder / "curves.csv") as fh:
        vals = [float(r["val_loss"]) for r in csv.DictReader(fh) if r["val_loss"]]
    assert len(vals) == 3
    assert vals[-1] < vals[0] - 0.05, vals  # it learns
    saved = json.loads((folder / "run.json").read_text())
    assert saved["architecture"] == saved["arch"]["arch"] == arch
    assert saved["hf_config"]["model_type"] == arch
    loaded = load_model_folder(folder, kind="lm")
    assert loaded.objective == objective
    assert saved["params"]["total"] == dm.count_parameters(loaded.model)["total"]


@pytest.mark.parametrize("arch", ["llama", "mamba", "modernbert", "esm"])
def test_embeddings_of_every_layer(pretrained, arch, tmp_path):
    import pandas as pd

    folder = pretrained[arch][0]
    seqs = ["ACGTACGTAC", "ATGGCGTTTAAACCCGGG", "TTTT"]
    df = pd.DataFrame({"id": ["a", "b", "c"], "sequence": seqs, "split": ["test"] * 3})
    embs = {
        layer: load_embeddings(
            embed_table(folder, df, tmp_path / f"{layer}.npz", layer=layer, device="cpu")
        ).embeddings
        for layer in (0, 1, 2, -1)
    }
    assert embs[0].shape == (3, 64)
    assert np.isfinite(embs[-1]).all()
    assert not np.allclose(embs[0], embs[1], atol=1e-4)
    np.testing.assert_array_equal(embs[2], embs[-1])


def test_score_and_generate_with_a_new_decoder(pretrained):
    lm = inf.LoadedModel.from_folder(pretrained["llama"][0])
    assert lm.context == 512
    ids = lm.encode("ACGTACGTAC")
    scores = inf.score_ids(lm, ids)
    assert np.isfinite(scores[1:]).all()
    assert (scores[1:] < 0).all()
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0], -1)
    assert math.isclose(scores[3], float(logp[2, ids[3]]), abs_tol=1e-4)
    a = smp.generate(lm, "ATG", n=2, max_new_tokens=12, seed=3)
    assert a == smp.generate(lm, "ATG", n=2, max_new_tokens=12, seed=3)
    assert all(s.startswith("ATG") and set(s) <= set("ACGTN") for s in a)


# ----------------------------------------------------------------------------- fine-tuning


def _model_dir(folder: Path, objective: str, arch: str) -> Path:
    tok = dtok.build_tokenizer({"type": "nucleotide"})
    tok.save(folder)
    torch.manual_seed(7)
    spec = dm.resolve_arch(objective, "tiny", {"context": 96}, arch)
    dm.build_model(objective, spec, tok.vocab_size, tok.special_ids).save_pretrained(str(folder))
    (folder / "run.json").write_text(json.dumps({"tokenizer": "t", "tokenizer_hash": tok.hash}))
    return folder


FT = {"batch_size": 16, "max_epochs": 3, "patience": 3, "lr": 3e-3, "threads": 1}
FT |= {"warmup_steps": 2, "max_shift": 0}


@pytest.mark.parametrize(
    ("objective", "arch", "regime"),
    [
        ("gpt", "gpt_neox", "partial"),
        ("gpt", "llama", "lora"),
        ("gpt", "mamba", "full"),
        ("gpt", "mamba2", "frozen"),
        ("mlm", "modernbert", "lora"),
        ("mlm", "esm", "lora"),
    ],
)
def test_finetuning_runs_on_each_new_family(objective, arch, regime, tmp_path):
    folder = _model_dir(tmp_path / "m", objective, arch)
    cfg = {**FT, "regime": regime, "freeze_layers": 1, "pooling": "mean"}
    model, _ = _regime_model(folder, regime)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if regime == "lora":
        assert any("lora_A" in n for n in trainable)
        assert all(n.startswith("head.") or "lora_" in n for n in trainable)
    if regime == "partial":
        assert not any(".layers.0." in n for n in trainable)
        assert any(".layers.1." in n for n in trainable)
    table = gc_at_table(96, skew=0.4, fractions=(0.7, 0.85))
    rec = ft.finetune(folder, table, tmp_path / "run", cfg, task_name="t")
    assert rec["regime"] == regime
    assert 0.0 <= rec["metrics"]["accuracy"] <= 1.0
    again = load_model_folder(tmp_path / "run" / "model", kind="finetuned")
    assert type(again.model.lm).__name__.lower().startswith(arch.replace("_", ""))


def _regime_model(folder, regime):
    from dnalm.core.config import FinetuneTrainConfig

    lm = load_model_folder(folder, kind="backbone").model
    cfg = FinetuneTrainConfig.from_dict({"regime": regime, "freeze_layers": 1})
    model = ft.FinetuneModel(lm, "classification", 2, cfg)
    ft.apply_regime(model, cfg)
    return model, cfg


def _fused_training_call(mixer_cls) -> tuple[str, str]:
    """The source of a transformers mixer's forward before its fused-kernel training branch
    (``if self.training and cache_params is None``), and of that branch up to its early
    return."""
    import inspect

    src = inspect.getsource(mixer_cls.forward)
    start = src.index("if self.training and cache_params is None")
    return src[:start], src[start : src.index("if fused_output is not None", start)]


@pytest.mark.parametrize("arch", sorted(SSM_ARCHS))
def test_state_space_lora_adapts_only_what_the_fused_kernel_calls(arch, tmp_path):
    """With mamba-ssm installed, a training forward of a Mamba mixer passes the weights of
    conv1d, x_proj, dt_proj and out_proj (mamba2: conv1d, norm, out_proj) straight to one
    fused kernel; only in_proj runs as a module, so a LoRA adapter on out_proj was never
    trained on a GPU. The registry's fused_raw_weights must hold what the installed
    transformers reads, the LoRA targets none of it, and the adapters land on in_proj."""
    import importlib
    import re

    kind = ARCHS.get(arch)
    module = importlib.import_module(f"transformers.models.{arch}.modeling_{arch}")
    mixer = getattr(module, {"mamba": "MambaMixer", "mamba2": "Mamba2Mixer"}[arch])
    before, call = _fused_training_call(mixer)
    raw = set(re.findall(r"self\.(\w+)\.(?:weight|bias)", call))
    assert raw, call
    assert raw <= set(kind.fused_raw_weights), (arch, sorted(raw))
    assert not set(kind.lora_targets) & raw, (arch, kind.lora_targets, sorted(raw))
    for target in kind.lora_targets:  # called as a module before the kernel
        assert f"self.{target}(" in before, target
    model, _ = _regime_model(_model_dir(tmp_path / "m", "gpt", arch), "lora")
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters()
               if "lora_A" in n}  # fmt: skip
    assert adapted == set(kind.lora_targets)


def test_a_sweep_passes_its_arch_to_every_run():
    from dnalm.training.sweeps import expand_sweeps

    sweep = {"objective": "gpt", "arch": "llama", "tokenizer": "t", "presets": ["tiny"]}
    sweep |= {"architectures": [{"d_model": 32}], "tokens_per_param": [1]}
    config = {"tokenizers": {"t": {}}, "corpus": {"block_size": 8}, "sweeps": {"s": sweep}}
    points = expand_sweeps(config, {})["s"]
    assert [p.spec["arch"] for p in points] == ["llama", "llama"]
    tiny = dm.build_model("gpt", dm.resolve_arch("gpt", "tiny", {}, "llama"), 8, {"pad_id": 0})
    assert points[0].tokens == dm.count_parameters(tiny)["non_embedding"]  # llama's, not opt's
    config["sweeps"]["s"] = {**sweep, "presets": ["seed"], "architectures": []}
    with pytest.raises(ConfigError, match=r"sweeps\.s\.presets: unknown llama preset 'seed'"):
        expand_sweeps(config, {})
    config["sweeps"]["s"] = {**sweep, "arch": "mamba"}
    with pytest.raises(ConfigError, match=r"sweeps\.s: arch mamba cannot train on packed"):
        expand_sweeps(config, {})


def test_mamba_state_rates_are_not_weight_decayed():
    from dnalm.training.core import param_groups

    model = _tiny("gpt", "mamba")
    decayed, rest = param_groups(model, 0.1)
    a_logs = [m.A_log for m in model.modules() if hasattr(m, "A_log")]
    assert len(a_logs) == 2
    assert all(a.ndim == 2 for a in a_logs)  # a matrix: the plain rule would decay it
    assert not any(p is a for p in decayed["params"] for a in a_logs)
    assert sum(any(p is a for p in rest["params"]) for a in a_logs) == 2
    assert any(p is model.backbone.layers[0].mixer.in_proj.weight for p in decayed["params"])


def test_mamba_on_cuda_without_kernels_says_so_with_a_memory_estimate(caplog):
    """A CUDA Mamba run without mamba-ssm/causal-conv1d takes transformers' sequential path:
    a small one gets a warning with the memory estimate, one whose estimate exceeds the GPU
    (bench_arch.py's documented CUDA shape: about 170 GB) is refused with the fix; the CPU
    and non-Mamba models get nothing. The device is only named (no GPU is used)."""
    import importlib.util

    from transformers import BertConfig, Mamba2Config, MambaConfig

    from dnalm.modeling.archs import mamba
    from dnalm.modeling.models import check_cuda_path

    if all(importlib.util.find_spec(p) for p in mamba.KERNEL_PACKAGES):
        pytest.skip("the Mamba kernels are installed here")
    big = MambaConfig(hidden_size=768, num_hidden_layers=24, state_size=16, expand=2)
    assert round(mamba.fallback_memory_bytes(big, 16, 1024) / 1e9) in range(160, 185)
    cuda, h100 = torch.device("cuda"), 80 * 10**9
    with pytest.raises(
        ConfigError, match=r"sequential .* about 17\d GB .*pip install -e '\.\[mamba\]'"
    ):
        mamba.check_cuda_path(big, cuda, 16, 1024, gpu_bytes=h100)
    small = MambaConfig(hidden_size=64, num_hidden_layers=2, state_size=16, expand=2)
    with caplog.at_level("WARNING"):
        msg = mamba.check_cuda_path(small, cuda, 4, 256, gpu_bytes=h100)
    assert "mamba_ssm and causal_conv1d" in (msg or "")
    assert msg in caplog.text
    assert check_cuda_path(small, torch.device("cpu"), 4, 256) is None
    assert check_cuda_path(BertConfig(), cuda, 16, 1024) is None  # no such check for BERT
    two = Mamba2Config(hidden_size=64, num_hidden_layers=2, num_heads=4, head_dim=32)
    assert "chunked PyTorch path" in (check_cuda_path(two, cuda, 4, 256) or "")
