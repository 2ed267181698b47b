"""benchmarks/conv_rbm_mnist.py: its smoke mode trains through the CLI, writes the filters and
samples with ``genzoo filters`` / ``genzoo sample``, measures the test objective of the initial
and the trained model and writes a well-formed result outside benchmarks/results; its two
evaluation figures agree with their definitions on a tiny model."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from PIL import Image
from smoke_support import REPO, read_result, run_script, step_heads
from support import load_benchmark, real_data_file

from genzoo.models.boltzmann.conv_rbm import ConvRBM, ConvRBMConfig


def _tiny_model_and_data():
    g = torch.Generator().manual_seed(0)
    m = ConvRBM(ConvRBMConfig(n_visible=36, n_filters=3, kernel_size=3, pool_size=2,
                              init_std=0.5), generator=g).double()
    with torch.no_grad():
        m.b.normal_(0.0, 0.5, generator=g)
        m.c.normal_(0.0, 0.5, generator=g)
    x = (torch.rand(5, 36, generator=g) < 0.4).double()
    return m, x


def test_pseudo_log_likelihood_with_every_pixel_is_the_exact_sum():
    m, x = _tiny_model_and_data()
    pll = load_benchmark("conv_rbm_mnist").pseudo_log_likelihood(m, x, n_pixels=36, generator=torch.Generator())
    exact = torch.zeros(len(x), dtype=torch.float64)
    for i in range(36):
        other = x.clone()
        other[:, i] = 1.0 - other[:, i]
        # log P(x_i | x_-i) = -F(x) - log(exp(-F(x)) + exp(-F(x with x_i flipped)))
        both = torch.stack([-m.free_energy(x), -m.free_energy(other)], -1)
        exact += -m.free_energy(x) - torch.logsumexp(both, -1)
    torch.testing.assert_close(pll, exact)
    assert (pll < 0).all()


def test_pseudo_log_likelihood_subsample_is_unbiased_on_average():
    m, x = _tiny_model_and_data()
    script = load_benchmark("conv_rbm_mnist")
    exact = script.pseudo_log_likelihood(m, x, n_pixels=36)
    g = torch.Generator().manual_seed(1)
    draws = torch.stack([script.pseudo_log_likelihood(m, x, 4, g) for _ in range(2000)])
    se = draws.std(0) / math.sqrt(len(draws))
    assert ((draws.mean(0) - exact).abs() < 5 * se).all()


def test_reconstruction_cross_entropy_is_the_bernoulli_log_loss_of_the_mean_field_recon():
    m, x = _tiny_model_and_data()
    ce = load_benchmark("conv_rbm_mnist").reconstruction_cross_entropy(m, x)
    p = m.p_v_given_h(m.p_h_given_v(x))
    direct = -(x * p.log() + (1 - x) * (1 - p).log()).sum(-1)
    torch.testing.assert_close(ce, direct)


@pytest.mark.parametrize("data", ["digits", "mnist"])
def test_smoke_writes_a_complete_result_with_images(tmp_path, data):
    if data == "mnist":
        real_data_file("mnist/t10k-images-idx3-ubyte.gz")
    run_script(["benchmarks/conv_rbm_mnist.py", "--smoke", "--data", data,
                "--out", str(tmp_path / "run"), "--results-dir", str(tmp_path)])
    result = read_result(tmp_path / "conv_rbm_mnist.json")
    assert result["smoke"] is True and result["metric"]["unit"] == "nats"
    assert result["data"]["name"] == data and result["data"]["binarization"] == "dynamic"
    assert result["data"]["n_examples"] == 100
    extra = result["extra"]
    for when in ("before", "after"):
        assert extra[when]["recon_ce"]["n"] == 100
        assert 0 < extra[when]["recon_ce"]["mean"] and extra[when]["pll"]["mean"] < 0
        assert math.isfinite(extra[when]["pll"]["stderr"])
    assert result["value"] == extra["after"]["recon_ce"]["mean"]
    assert result["references"] == []  # no published number; "before" lives in extra
    check = extra["rebuild_check"]
    assert math.isclose(check["valid_recon_error_rebuilt"],
                        check["valid_recon_error_metrics_csv_step0"], rel_tol=1e-3)
    for name in ("filters", "samples"):
        path = tmp_path / f"conv_rbm_mnist_{name}.png"  # copied beside the result
        assert extra["images"][name] == str(path) and Image.open(path).size[0] > 0
    assert step_heads(result, 3) == [["genzoo", "train", "conv-rbm"],
                                     ["genzoo", "filters", str(tmp_path / "run")],
                                     ["genzoo", "sample", str(tmp_path / "run")]]
    assert "--set data.binarize=dynamic" in result["steps"][0]


def test_full_run_refuses_digits():
    proc = subprocess.run([sys.executable, "benchmarks/conv_rbm_mnist.py", "--data", "digits"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "--smoke" in proc.stderr


def test_pcd_smoke_writes_its_own_result(tmp_path):
    run_script(["benchmarks/conv_rbm_mnist.py", "--smoke", "--data", "digits", "--pcd",
                "--out", str(tmp_path / "run"), "--results-dir", str(tmp_path)])
    result = read_result(tmp_path / "conv_rbm_mnist_pcd.json")
    assert result["benchmark"] == "conv_rbm_mnist_pcd" and "PCD-1" in result["title"]
    assert result["training"]["settings"]["model.persistent"] is True
    assert (tmp_path / "conv_rbm_mnist_pcd_samples.png").is_file()
