"""The GPU benchmarks stay working without a GPU: bench_arch.py's handling of refused
combinations, and benchmarks/gpu_smoke.py's CPU mode."""

from __future__ import annotations

import importlib.util
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
