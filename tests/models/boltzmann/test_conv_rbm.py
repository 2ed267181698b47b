"""Convolutional RBM with probabilistic max pooling: block probabilities and free energy
against enumeration of the constrained hidden states, p(v | h) against enumeration, numerical
stability of the block softmax, tiling errors, CD training on the digits, filters and samples
as images, and the convolutional DBN stacking."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _sequence_checks import randomise, states
from PIL import Image

from genzoo.cli import main
from genzoo.core.errors import ConfigError
from genzoo.core.protocols import AIS, ENERGY, EXACT_LOG_PARTITION, AnnealingPath, EnergyModel
from genzoo.core.registry import get_model_spec
from genzoo.data import DataConfig, load_data
from genzoo.evaluation import (
    ais_log_partition,
    exact_log_partition,
    linear_schedule,
    reverse_ais_log_partition,
)
from genzoo.models.boltzmann.conv_rbm import (
    ConvDBN,
    ConvRBM,
    ConvRBMConfig,
    next_layer_config,
    save_filters,
)
from genzoo.utils.images import save_image_grid


def tiny(side=5, kernel=2, pool=2, filters=1, scale=1.5, seed=0) -> ConvRBM:
    m = ConvRBM(
        ConvRBMConfig(
            n_visible=side * side,
            n_filters=filters,
            kernel_size=kernel,
            pool_size=pool,
            init_std=0.0,
        )
    )
    return randomise(m, scale, seed)


def test_registered_and_energy_contract():
    spec = get_model_spec("conv-rbm")
    m = spec.build(ConvRBMConfig(n_visible=64, kernel_size=3, n_filters=4))
    assert spec.cls is ConvRBM and m.capabilities == {ENERGY, AIS, EXACT_LOG_PARTITION}
    assert isinstance(m, EnergyModel) and isinstance(m, AnnealingPath)
    assert m.detector_shape == (6, 6) and m.pool_shape == (3, 3) and m.n_hidden == 4 * 36


@pytest.mark.parametrize(
    "kw",
    [{"kernel_size": 4, "pool_size": 2}, {"kernel_size": 9}, {"kernel_size": 3, "pool_size": 4}],
)
def test_sizes_that_do_not_tile_raise_at_construction(kw):
    with pytest.raises(ConfigError, match="kernel"):
        ConvRBM(ConvRBMConfig(n_visible=64, **kw))


def test_non_square_input_needs_image_shape():
    with pytest.raises(ConfigError, match="image_height"):
        ConvRBM(ConvRBMConfig(n_visible=28 * 20, kernel_size=5))
    m = ConvRBM(ConvRBMConfig(n_visible=28 * 20, image_height=28, image_width=20, kernel_size=5))
    assert m.detector_shape == (24, 16)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_block_probabilities_and_free_energy_match_enumeration(scale):
    # 5x5 image, 2x2 kernel: 4x4 detectors in four 2x2 blocks; the constrained states are the
    # 2^16 binary maps with finite energy (5^4 = 625 of them).
    m = tiny(scale=scale)
    H = states(16)
    g = torch.Generator().manual_seed(1)
    v = (torch.rand(3, 25, generator=g) < 0.5).double()
    for i in range(3):
        e = m.energy(v[i].expand(len(H), -1), H)
        finite = torch.isfinite(e)
        assert int(finite.sum()) == 5**4
        w = torch.softmax(-e[finite], 0)
        exact_h = w @ H[finite]
        blocks = m._blocks(H[finite].reshape(-1, 1, 4, 4)).sum(-1).reshape(-1, 4)
        exact_off = w @ (blocks == 0).double()
        p_h, p_off = m.block_probabilities(m.detector_input(v[i].reshape(1, 1, 5, 5)))
        torch.testing.assert_close(p_h.flatten(), exact_h, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(p_off.flatten(), exact_off, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(m.p_h_given_v(v[i : i + 1]).flatten(), exact_h)
        sums = m._blocks(p_h).sum(-1) + p_off
        torch.testing.assert_close(sums, torch.ones_like(sums))
        exact_f = -torch.logsumexp(-e[finite], 0)
        torch.testing.assert_close(m.free_energy(v[i : i + 1])[0], exact_f)


def test_p_v_given_h_matches_enumeration():
    m = tiny(side=3, kernel=2, pool=2, filters=2)
    V = states(9)
    h = torch.zeros(1, 2 * 4, dtype=torch.float64)
    h[0, 1] = h[0, 6] = 1.0  # one detector on in each filter's single block
    w = torch.softmax(-m.energy(V, h.expand(len(V), -1)), 0)
    torch.testing.assert_close(m.p_v_given_h(h)[0], w @ V)


def test_block_softmax_is_stable_for_huge_inputs():
    m = tiny(scale=1.0)
    a = torch.tensor([[[[800.0, -900.0, 0.0, 3.0]] * 4]], dtype=torch.float64)  # (1,1,4,4)
    for dtype in (torch.float32, torch.float64):
        p_h, p_off = m.to(dtype).block_probabilities(a.to(dtype))
        assert torch.isfinite(p_h).all() and torch.isfinite(p_off).all()
        sums = m._blocks(p_h).sum(-1) + p_off
        torch.testing.assert_close(sums, torch.ones_like(sums))
        assert torch.isfinite(m.block_log_normaliser(a.to(dtype))).all()
    m.double()


def test_sampled_blocks_have_at_most_one_detector_on_and_follow_the_softmax():
    m = tiny()
    v = torch.ones(1, 25, dtype=torch.float64)
    a = m.detector_input(v.reshape(1, 1, 5, 5)).expand(20000, -1, -1, -1)
    h, p = m.sample_blocks(a, torch.Generator().manual_seed(0))
    on = m._blocks(h).sum(-1)
    assert on.max() <= 1 and torch.equal(on, p)
    p_h, _ = m.block_probabilities(a[:1])
    # 20000 draws: standard error <= 0.0036 per frequency
    torch.testing.assert_close(h.mean(0, keepdim=True), p_h, atol=0.02, rtol=0)


def test_sparsity_penalty_moves_only_hidden_biases():
    cfg = ConvRBMConfig(
        n_visible=25, n_filters=2, kernel_size=2, sparsity_target=0.05, sparsity_cost=1.0
    )
    m = ConvRBM(cfg).double()
    x = (torch.rand(4, 25, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    grads = []
    for cost in (1.0, 0.0):
        m.config = cfg.replace(sparsity_cost=cost, sparsity_target=0.05 if cost else None)
        m.zero_grad()
        m.loss(x, torch.Generator().manual_seed(1))["loss"].backward()
        grads.append({k: p.grad.clone() for k, p in m.named_parameters()})
    torch.testing.assert_close(grads[0]["W"], grads[1]["W"])
    torch.testing.assert_close(grads[0]["b"], grads[1]["b"])
    assert not torch.allclose(grads[0]["c"], grads[1]["c"])


def _digits():
    return load_data(DataConfig(name="digits", binarize="threshold"))


def test_cd_training_on_digits_lowers_reconstruction_error_and_writes_images(tmp_path):
    bundle = _digits()
    torch.manual_seed(0)
    m = ConvRBM(
        ConvRBMConfig(
            n_visible=64, n_filters=8, kernel_size=3, pool_size=2, init_std=0.05, sample_burn_in=20
        )
    )
    m.init_from_data(bundle.train.x)
    before = m.validation_metrics(bundle.valid.x)["recon_error"]
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.5)
    g = torch.Generator().manual_seed(0)
    x = bundle.train.x
    for step in range(150):
        idx = torch.randint(len(x), (50,), generator=g)
        opt.zero_grad()
        m.loss(x[idx], g)["loss"].backward()
        opt.step()
    after = m.validation_metrics(bundle.valid.x)["recon_error"]
    print(f"conv-rbm digits recon_error {before:.4f} -> {after:.4f}")
    assert after < 0.75 * before, (before, after)
    s = m.sample(16, torch.Generator().manual_seed(2))
    assert s.shape == (16, 64) and set(s.unique().tolist()) <= {0.0, 1.0}
    save_image_grid(s, (8, 8), tmp_path / "samples.png")
    save_filters(m, tmp_path / "filters.png")
    assert Image.open(tmp_path / "filters.png").size[0] > 0
    assert Image.open(tmp_path / "samples.png").size[0] > 0


def test_convolutional_dbn_stacks_on_the_pooling_layer():
    torch.manual_seed(0)
    lower = ConvRBM(ConvRBMConfig(n_visible=100, n_filters=3, kernel_size=3, pool_size=2))
    cfg = next_layer_config(lower, n_filters=5, kernel_size=2, pool_size=1)
    assert (cfg.in_channels, cfg.image_height, cfg.image_width) == (3, 4, 4)
    upper = ConvRBM(cfg)
    dbn = ConvDBN([lower, upper])
    x = (torch.rand(6, 100, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    feats = dbn.features(x, upto=1, generator=torch.Generator().manual_seed(1))
    assert feats.shape == (6, 48) and set(feats.unique().tolist()) <= {0.0, 1.0}
    out = upper.loss(feats, torch.Generator().manual_seed(2))
    assert torch.isfinite(out["loss"])
    top = dbn.features(x)
    assert top.shape == (6, 5 * 3 * 3) and ((top >= 0) & (top <= 1)).all()
    assert torch.allclose(dbn.features(x, upto=1), lower.pool_probabilities(x))
    with pytest.raises(ConfigError, match="next_layer_config"):
        ConvDBN([lower, ConvRBM(ConvRBMConfig(n_visible=16, kernel_size=1, pool_size=1))])


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_gibbs_kernel_leaves_the_exact_marginal_invariant(beta):
    # 3x3 image, two 2x2 filters, one 2x2 pooling block each: all 512 images and the 25
    # constrained hidden states are enumerable; T(v -> v') = sum_h p(h | v) p(v' | h).
    m = tiny(side=3, kernel=2, pool=2, filters=2, scale=1.0)
    V, Hall = states(9), states(8)
    e = m.energy(V.repeat_interleave(len(Hall), 0), Hall.repeat(len(V), 1))
    logw = (-beta * e).reshape(len(V), len(Hall))
    ok = torch.isfinite(logw[0])
    Hs, logw = Hall[ok], logw[:, ok]
    p_v = torch.softmax(torch.logsumexp(logw, 1), 0)
    p_h_v = torch.softmax(logw, 1)
    hm = Hs.reshape(-1, 2, 2, 2)
    q = torch.sigmoid(beta * m.visible_input(hm)).flatten(1)
    p_vp_h = torch.exp(V @ torch.log(q).T + (1 - V) @ torch.log1p(-q).T).T
    torch.testing.assert_close(p_v @ (p_h_v @ p_vp_h), p_v)
    # the sampler follows that kernel from one start state
    nxt = m.gibbs_step(V[100].expand(40000, -1), beta, torch.Generator().manual_seed(0))
    codes = (nxt * 2.0 ** torch.arange(8, -1, -1, dtype=torch.float64)).sum(1).long()
    freq = torch.bincount(codes, minlength=512).double() / len(nxt)
    torch.testing.assert_close(freq, p_h_v[100] @ p_vp_h, atol=0.01, rtol=0)


def test_the_path_starts_at_the_base_and_ends_at_the_model():
    # 3x5 images, two 2x2 filters, 2x2 pooling: the 2^15 images are enumerable. At beta = 0
    # the path is the base (its log Z_A in closed form, its blocks as sparse as the model's
    # hidden biases make them), at beta = 1 the model; in between each F_beta is a free
    # energy whose increments the fused step computes in float32 without cancellation.
    m = ConvRBM(ConvRBMConfig(n_visible=15, image_height=3, image_width=5, n_filters=2,
                              kernel_size=2, pool_size=2, init_std=0.0)).double()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        m.W.copy_(2.0 * torch.randn(m.W.shape, generator=g, dtype=torch.float64))
        m.b.fill_(-0.3)
        m.c.copy_(torch.tensor([-4.0, 1.0]))
    base = m.ais_base((torch.rand(300, 15, generator=g) < 0.3).double())
    torch.testing.assert_close(base.c, m.c.detach())
    images = states(15)
    log_z0 = torch.logsumexp(-m.annealed_free_energy(images, 0.0, base), 0)
    torch.testing.assert_close(log_z0, base.log_partition())
    torch.testing.assert_close(m.annealed_free_energy(images, 1.0, base), m.free_energy(images))
    # The base's blocks: P(on) = C^2 e^c / (1 + C^2 e^c) per block, independent of v.
    zero_w = ConvRBM(m.config).double()
    with torch.no_grad():
        zero_w.c.copy_(m.c)
    a = zero_w.detector_input(images[:1].reshape(1, 1, 3, 5))
    off = zero_w.block_probabilities(a)[1]
    torch.testing.assert_close(1 - off[0, :, 0, 0], 4 * m.c.exp() / (1 + 4 * m.c.exp()),
                               check_dtype=False)
    m32 = ConvRBM(m.config)
    m32.load_state_dict({k: v.float() for k, v in m.state_dict().items()})
    v = images[torch.randperm(len(images), generator=g)[:64]]
    for lo, hi in [(0.0, 1e-3), (0.4, 0.401), (0.999, 1.0)]:
        base32 = m32.ais_base(torch.zeros(1, 15))
        base32.b.copy_(base.b.float())
        inc, _ = m32.annealed_step(v.float(), beta_prev=lo, beta=hi, base=base32,
                                   transition=False)
        exact = (m.annealed_free_energy(v, lo, base) - m.annealed_free_energy(v, hi, base))
        torch.testing.assert_close(inc, exact, atol=2e-6, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ais_matches_enumeration_and_forward_reverse_bracket(dtype):
    # A 3x5 image, two 2x2 filters, 2x2 pooling: 2x4 detector maps, two blocks per filter;
    # the 2^15 images are enumerable, which gives log Z and exact samples to start reverse AIS.
    m = ConvRBM(
        ConvRBMConfig(n_visible=15, image_height=3, image_width=5, n_filters=2, kernel_size=2,
                      pool_size=2, init_std=0.0)
    ).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        m.W.copy_(2.5 * torch.randn(m.W.shape, generator=g, dtype=torch.float64))
        m.b.fill_(-0.5)
        m.c.copy_(torch.tensor([0.5, -1.0]))
    exact = exact_log_partition(m).value
    x_train = (torch.rand(500, 15, generator=g) < 0.4).double()
    base = m.ais_base(x_train)
    images = states(15)
    p = torch.softmax(-m.free_energy(images), 0)
    v_model = images[torch.multinomial(p, 200, replacement=True, generator=g)]
    betas = linear_schedule(300)
    fwd = ais_log_partition(m, base, betas, 200, torch.Generator().manual_seed(1), dtype)
    rev = reverse_ais_log_partition(m, base, betas, v_model, torch.Generator().manual_seed(2),
                                    dtype)
    print(f"conv-rbm log Z exact {exact:.4f}, forward AIS {fwd.value:.4f} +/- {fwd.stderr:.4f}, "
          f"reverse {rev.value:.4f} +/- {rev.stderr:.4f} ({dtype})")
    assert abs(fwd.value - exact) < 0.1 and abs(rev.value - exact) < 0.1
    # Forward is low and reverse high in expectation: a bracket up to 3 standard errors.
    assert fwd.value - 3 * fwd.stderr <= exact <= rev.value + 3 * rev.stderr


def test_train_then_evaluate_gives_an_ais_likelihood(tmp_path, capsys):
    run = tmp_path / "conv"
    argv = ["train", "conv-rbm", "--data", "digits", "--out", str(run),
            "--set", "data.binarize=threshold", "--set", "data.n_train=300",
            "--set", "data.n_eval=50", "--set", "model.n_filters=4",
            "--set", "model.kernel_size=3", "--set", "model.sample_burn_in=5",
            "--set", "train.epochs=1", "--set", "train.progress=false",
            "--set", "train.grid_samples=0"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--json", "--set", "eval.ais_runs=20",
                 "--set", "eval.ais_betas=200", "--set", "eval.reverse_burn_in=20"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["model"] == "conv-rbm" and report["estimator"] == "AIS (forward)"
    assert 0 < report["nll_nats"] < 64 * math.log(2) and report["stderr"] > 0
    assert math.isfinite(report["nll_nats_reverse"])
