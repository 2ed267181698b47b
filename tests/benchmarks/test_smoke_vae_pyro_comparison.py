"""benchmarks/speed/vae_pyro_comparison.py (row vae_pyro_comparison) in its smoke mode, with Pyro as installed here and with
Pyro made unimportable: either way the script measures genzoo, evaluates with genzoo's
importance sampler and writes a well-formed speed result outside benchmarks/results."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from support import load_benchmark, real_data_file

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"
cmp = load_benchmark("speed/vae_pyro_comparison")
common = load_benchmark("common")

from genzoo.evaluation.importance import importance_log_px


def _results_snapshot() -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in (BENCH / "results").glob("*")}


def _smoke(tmp_path: Path, extra_env: dict[str, str]) -> dict:
    real_data_file("binarized_mnist/binarized_mnist.npz")
    before = _results_snapshot()
    env = {**os.environ, "GENZOO_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra_env}
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "vae_pyro_comparison", "--smoke", "--", "--out",
         str(tmp_path / "run"), "--results-dir", str(tmp_path / "results")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _results_snapshot() == before, "a smoke run touched benchmarks/results"
    written = Path(proc.stdout.strip().splitlines()[-1].removeprefix("wrote ").strip())
    result = json.loads(written.read_text())
    common.validate_result(result)
    assert result["smoke"] is True and result["kind"] == "speed"
    gz = result["timings"]["genzoo"]
    assert gz["status"] == "ok" and len(gz["times_s"]) == 2 and gz["median_s"] > 0
    assert gz["test_nll_nats"] <= gz["test_elbo_nats"] + 1e-9
    assert 0 < gz["test_nll_nats"] < 784 * math.log(2) + 50
    return result


def test_smoke_with_pyro_as_installed(tmp_path):
    result = _smoke(tmp_path, {})
    py = result["timings"]["pyro"]
    if py["status"] == "ok":
        assert py["test_nll_nats"] <= py["test_elbo_nats"] + 1e-9
        ratio = result["ratios"]["genzoo / pyro"]
        assert math.isclose(ratio, result["timings"]["genzoo"]["median_s"] / py["median_s"])
        assert "nll_difference_genzoo_minus_pyro" in result["extra"]
    else:
        assert py["reason"] and result["acceptance"]["passed"] is False


def test_smoke_reports_missing_pyro_instead_of_failing(tmp_path):
    # A package named pyro that fails to import shadows any installed Pyro.
    fake = tmp_path / "fake_site" / "pyro"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('pyro blocked by the test')\n")
    path = os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])
    result = _smoke(tmp_path, {"PYTHONPATH": path})
    py = result["timings"]["pyro"]
    assert py["status"] == "missing" and "pyro blocked by the test" in py["reason"]
    assert "pip install --no-deps pyro-ppl" in py["reason"]
    assert result["ratios"] == {}
    assert result["acceptance"]["passed"] is False
    assert result["acceptance"]["peers_not_measured"] == ["pyro"]


def test_pyro_wrapper_honours_the_latent_contract():
    """The wrapper's log_joint and proposal are what the evaluator needs; with k draws the
    importance-sampled log p(x) is never below the ELBO of the same draws."""
    torch.manual_seed(0)
    enc, dec = cmp.PyroEncoder(784, (8,), 3), cmp.PyroDecoder(784, (8,), 3)
    model = cmp.PyroVAELatent(enc, dec)
    x = (torch.rand(5, 784) < 0.3).float()
    z = torch.randn(5, 3)
    p = dec(z)
    expected = (-0.5 * (z**2 + math.log(2 * math.pi))).sum(-1) + (
        x * torch.log(p) + (1 - x) * torch.log1p(-p)).sum(-1)
    torch.testing.assert_close(model.log_joint(x, z), expected)
    q = model.proposal(x)
    assert q.batch_shape == (5,) and q.event_shape == (3,)
    est = importance_log_px(model, x, 50, torch.Generator().manual_seed(1))
    assert (est.log_px >= est.elbo - 1e-9).all()


def test_acceptance_without_pyro_names_the_missing_peer():
    timings = {"genzoo": {"status": "ok", "median_s": 1.0},
               "pyro": {"status": "missing", "reason": "not installed"}}
    acc = cmp._acceptance(timings, {}, {})
    assert acc["passed"] is False and acc["peers_not_measured"] == ["pyro"]
    assert "not installed" in acc["why"]


@pytest.mark.parametrize("ratio, nll_diff, passed", [
    (0.8, 0.5, True), (1.2, 0.5, False), (0.8, cmp.ACCEPT_NLL_NATS + 0.1, False)])
def test_acceptance_needs_both_speed_and_nll(ratio, nll_diff, passed):
    timings = {"genzoo": {"status": "ok"}, "pyro": {"status": "ok"}}
    acc = cmp._acceptance(timings, {"genzoo / pyro": ratio},
                          {"nll_difference_genzoo_minus_pyro": nll_diff})
    assert acc["passed"] is passed and (acc["why"] == "met") is passed
