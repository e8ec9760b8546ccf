"""The GPU benchmarks stay working without a GPU: bench_arch.py's handling of refused
combinations, and benchmarks/gpu_smoke.py's CPU mode."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_arch_skips_a_refused_combination_with_a_note(capsys):
    """--attn dense,flex with the default architectures: ModernBERT refuses flex, which
    used to end the run before anything was timed; now it is skipped with a note and the
    others (and the reference) are built for both attentions."""
    bench = load_benchmark("bench_arch")
    args = types.SimpleNamespace(
        n_layer=1, n_head=2, d_model=32, batch=2, block=64, torch_device=torch.device("cpu")
    )
    sides, skipped = bench.build_sides(["modernbert", "opt"], ["dense", "flex"], args)
    assert set(sides) == {
        ("ref", "dense"), ("ref", "flex"), ("modernbert", "dense"), ("opt", "dense"),
        ("opt", "flex"),
    }  # fmt: skip
    assert set(skipped) == {("modernbert", "flex")}
    assert "modernbert with flex attention skipped" in capsys.readouterr().err


def test_gpu_smoke_cpu_mode_passes_every_path(tmp_path):
    """benchmarks/gpu_smoke.py --cpu: every architecture trains, and LoRA fine-tuning,
    embedding, generation, scoring, VEP, attribution, DNA+text and bench_arch run, one line
    each; flex+compile is skipped on the CPU. The two-process DDP/FSDP2 path (about 2 minutes
    of CPU here) is left out: tests/test_training_pretrain.py and
    tests/test_training_distributed.py run those wrappers on gloo."""
    import subprocess

    from dnalm.kinds.archs import ARCHS

    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_smoke.py"), "--cpu", "--skip",
         "ddp+fsdp2", "--keep", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    status = {
        line.split()[1]: line.split()[0] for line in lines if line[:4] in {"PASS", "SKIP", "FAIL"}
    }
    want = [f"arch:{a}" for a in ARCHS.names()]
    want += ["lora", "embed", "generate", "score", "vep", "attribution", "dnatext", "bench_arch"]
    assert {name: status.get(name) for name in want} == dict.fromkeys(want, "PASS"), proc.stdout
    assert status["flex+compile"] == "SKIP"
    assert any(line.startswith("MFU opt ") for line in lines), proc.stdout
