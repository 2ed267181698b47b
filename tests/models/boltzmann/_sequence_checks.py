"""Checks shared by the Boltzmann-machine tests: the sequence RBMs (conditional RBM, RNN-RBM),
small models whose exact likelihood is enumerated (conv RBM), and the DBM classifiers trained on
the binary digits."""

from __future__ import annotations

import itertools

import torch

from genzoo.data import DataConfig, load_data


def states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def randomise(model: torch.nn.Module, scale: float, seed: int = 0) -> torch.nn.Module:
    model.double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model


def binary_digits():
    return load_data(DataConfig(name="digits", binarize="threshold"))


def assert_training_lowers_test_nll(model, bundle, label: str, png) -> None:
    """300 SGD steps on the binary digits lower the exact test NLL by more than 5 nats, and
    the trained model samples binary 8x8 images (written to ``png``)."""
    from genzoo.utils.images import save_image_grid

    def nll() -> float:
        with torch.no_grad():
            return float(-model.log_prob(bundle.test.x).mean())

    before = nll()
    train(model, bundle.train.x, steps=300, lr=0.05)
    after = nll()
    print(f"{label} digits exact test NLL {before:.2f} -> {after:.2f} nats")
    assert after < before - 5.0, (before, after)
    s = model.sample(16, torch.Generator().manual_seed(0))
    assert s.shape == (16, 64) and set(s.unique().tolist()) <= {0.0, 1.0}
    save_image_grid(s, (8, 8), png)
    assert png.stat().st_size > 0


@torch.no_grad()
def exact_nll(m, x: torch.Tensor) -> float:
    """Mean exact NLL of ``x`` (nats per example) under a float64 copy of the small energy
    model ``m``: free energy plus the enumerated log Z."""
    from genzoo.evaluation import exact_log_partition

    md = type(m)(m.config).double()
    md.load_state_dict({k: v.double() for k, v in m.state_dict().items()})
    return float(md.free_energy(x.double()).mean()) + exact_log_partition(md).value


def train_on_binary_digits(name: str, cls, overrides: list[str], run_dir):
    """Train registered model ``name`` (class ``cls``, seeded by torch.manual_seed(0)) with the
    genzoo Trainer on 500 thresholded digits; returns the model and the data bundle."""
    import dataclasses

    from genzoo.run_config import RunConfig
    from genzoo.training import Trainer

    cfg = RunConfig.default(name).with_overrides([
        "data.name=digits", "data.binarize=threshold", "data.n_train=500", "data.n_eval=200",
        *overrides, "train.progress=false", "train.grid_samples=0",
    ])
    bundle = load_data(cfg.data)
    cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=bundle.n_features))
    torch.manual_seed(0)
    model = cls(cfg.model)
    Trainer(model, cfg, bundle, run_dir).fit()
    return model, bundle


def train(model, x, steps: int, lr: float, batch: int = 50, seed: int = 0) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.5)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(x), (batch,), generator=g)
        opt.zero_grad()
        model.loss(x[idx], g)["loss"].backward()
        opt.step()


def assert_cd1_backward_is_autograd(m, x: torch.Tensor, seed: int = 2):
    """The closed-form backward of ``m.loss(x)`` (CD-1, visible and variance parameters W, b,
    c, log_var_logit) equals autograd of mean F(x) - mean F(v1), v1 drawn with the same seed.
    Returns v1; leaves autograd's gradients in the parameters."""
    from genzoo.models.boltzmann._ops import bernoulli

    m.loss(x, torch.Generator().manual_seed(seed))["loss"].backward()
    params = (m.W, m.b, m.c, m.log_var_logit)
    closed = [q.grad.clone() for q in params]
    m.zero_grad()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        h0 = bernoulli(m.p_h_given_v(x), g)
        v_model = m.sample_v_given_h(h0, g)
    (m.free_energy(x).mean() - m.free_energy(v_model).mean()).backward()
    for a, q in zip(closed, params):
        torch.testing.assert_close(a, q.grad)
    return v_model
