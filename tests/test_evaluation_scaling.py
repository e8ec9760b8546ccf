"""Scaling-sweep analysis (dnalm.evaluation.scaling): the compute frontier, power-law fits
that recover known parameters within their reported uncertainty and refuse too few points,
the FLOPs estimate of a known model, and the compute figure (dnalm.report.scaling_plots)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dnalm.evaluation.scaling import compute_frontier, fit_power_law, fit_table
from dnalm.modeling.flops import training_flops_per_token
from dnalm.modeling.models import (
    build_model,
    count_parameters,
    resolve_arch,
)
from dnalm.report.scaling_plots import plot_scaling


def test_flops_of_the_tiny_gpt():
    arch = resolve_arch("gpt", "tiny")  # 2 layers, width 64, MLP 256, no linear biases
    n = count_parameters(build_model("gpt", arch, 8, {"pad_id": 0}))["non_embedding"]
    assert n == 2 * (4 * 64**2 + 2 * 64 * 256 + 4 * 64) + 2 * 64 == 98_944
    # 6 N plus the attention products, 12 x n_layer x block x d_model, per token
    assert training_flops_per_token(arch, n, 128) == 6 * 98_944 + 12 * 2 * 128 * 64 == 790_272


def test_frontier_keeps_runs_better_than_every_cheaper_run():
    compute = [1, 2, 2, 4, 8, 16]
    loss = [3.0, 2.5, 2.8, 2.6, 2.2, 2.3]
    assert compute_frontier(compute, loss).tolist() == [True, True, False, False, True, False]


@pytest.mark.parametrize(("form", "params"), [("loglog", 2), ("offset", 3)])
def test_fit_refuses_fewer_points_than_parameters_plus_one(form, params):
    c = np.geomspace(1e9, 1e12, params)
    fit = fit_power_law(c, 5 * c**-0.1 + 1, form)
    assert not fit.ok
    assert fit.params == {}
    assert fit.refused.startswith(f"no fit: {params} points")
    assert np.isnan(fit.predict(c)).all()
    table = fit_table(fit, "frontier", 9).set_index("name")
    assert table.loc["status", "value"].startswith(f"no fit: {params} points")


def test_loglog_fit_recovers_a_known_power_law():
    rng = np.random.default_rng(0)
    c = np.geomspace(1e9, 1e14, 12)
    a, b = 40.0, 0.12
    loss = a * c**-b * np.exp(rng.normal(0, 0.01, c.size))
    fit = fit_power_law(c, loss, "loglog")
    assert fit.ok
    assert fit.n_points == 12
    for name, true in (("a", a), ("b", b)):
        assert abs(fit.params[name] - true) < 3 * fit.stderr[name], (name, fit.params, fit.stderr)
        assert fit.stderr[name] < 0.2 * true
    assert np.allclose(fit.predict(c), a * c**-b, rtol=0.02)


def test_offset_fit_recovers_a_known_power_law():
    rng = np.random.default_rng(1)
    c = np.geomspace(1e9, 1e15, 16)
    a, b, irreducible = 300.0, 0.25, 1.9
    loss = a * c**-b + irreducible + rng.normal(0, 0.003, c.size)
    fit = fit_power_law(c, loss, "offset")
    assert fit.ok, fit.refused
    for name, true in (("a", a), ("b", b), ("c", irreducible)):
        assert abs(fit.params[name] - true) < 3 * fit.stderr[name], (name, fit.params, fit.stderr)
    assert fit.formula().startswith("L = ")
    table = fit_table(fit, "all", 16).set_index("name")
    assert table.loc["status", "value"] == "fitted"
    assert float(table.loc["c", "value"]) == pytest.approx(fit.params["c"], rel=1e-5)


def summary_frame() -> pd.DataFrame:
    rows = []
    for size, n in (("tiny-D32", 24_896), ("tiny-D64", 98_944)):
        for tokens in (8_000, 16_000, 32_000):
            flops = 7.9 * n * tokens
            rows.append({
                "size": size, "non_embedding_params": n, "flops": flops,
                "test_bits_per_nt": 2.0 + 30 * flops**-0.15, "baseline": "markov_order5",
                "baseline_bits_per_nt": 1.93,
            })  # fmt: skip
    df = pd.DataFrame(rows)
    df["on_frontier"] = compute_frontier(df["flops"], df["test_bits_per_nt"])
    return df


def test_scaling_figure_with_and_without_a_fit(tmp_path):
    df = summary_frame()
    fit = fit_power_law(df["flops"], df["test_bits_per_nt"], "loglog")
    assert fit.ok
    png, svg = plot_scaling(df, tmp_path / "fit.png", fit.formula(), fit.predict)
    assert png.stat().st_size > 10_000
    assert svg.is_file()
    refused = fit_power_law(df["flops"][:2], df["test_bits_per_nt"][:2], "loglog")
    png, svg = plot_scaling(df, tmp_path / "nofit.png", refused.formula(), None)
    assert refused.formula().startswith("no fit: 2 points")
    assert png.read_bytes() != (tmp_path / "fit.png").read_bytes()
