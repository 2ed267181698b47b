"""Helpers shared by the tests: the device under test, real-data lookup and small random models
(importable because pytest puts tests/ on sys.path when it loads tests/conftest.py)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

from genzoo.models.boltzmann.rbm import RBM, RBMConfig
from genzoo.training.callbacks import Callback

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
# The one switch that moves the device-aware tests (conformance on the device, estimators
# against enumeration, Trainer and resume, distributed, CLI) to an accelerator; CI runs cpu.
DEVICE_ENV = "GENZOO_TEST_DEVICE"


def selected_device() -> torch.device:
    """The device under test: ``$GENZOO_TEST_DEVICE`` (cpu, cuda or cuda:N; default cpu)."""
    return torch.device(os.environ.get(DEVICE_ENV) or "cpu")


def unavailable_reason(device: torch.device) -> str | None:
    """Why ``device`` cannot run tests on this machine, or None when it can."""
    if device.type == "cpu":
        return None
    if device.type != "cuda":
        return f"{DEVICE_ENV}={device}: the tests run on cpu or cuda"
    if not torch.cuda.is_available():
        return (f"{DEVICE_ENV}={device} but torch.cuda.is_available() is False here (no GPU, "
                f"or torch {torch.__version__} built without CUDA); unset it to test on cpu")
    if (device.index or 0) >= torch.cuda.device_count():
        return f"{DEVICE_ENV}={device} but this machine has {torch.cuda.device_count()} GPU(s)"
    return None


def needs_cpu(device: torch.device, why: str) -> None:
    """Skip the calling test unless ``device`` is the CPU, saying ``why`` it is CPU-only."""
    if device.type != "cpu":
        pytest.skip(f"runs on cpu only, not on {device}: {why}")


def gen(device: torch.device | str, seed: int = 0) -> torch.Generator:
    """A generator on ``device`` seeded ``seed`` (random functions refuse another device's)."""
    return torch.Generator(device=device).manual_seed(seed)


def valid_curve(run_dir, figure: str) -> dict[int, float]:
    """step -> the validation figure ``valid_<figure>`` of each row of RUN/metrics.csv that
    has it."""
    import csv

    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return {int(r["step"]): float(r[f"valid_{figure}"]) for r in csv.DictReader(f)
                if r.get(f"valid_{figure}")}


class Killed(Exception):
    """Raised by :class:`KillAt`: a simulated crash."""


class KillAt(Callback):
    """A Trainer callback that simulates a crash right after step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, loss):
        if trainer.step == self.step:
            raise Killed


def load_benchmark(name: str):
    """The module benchmarks/<name>.py (e.g. ``run``, ``make_results``, ``common``,
    ``speed/rbm_cd1_speed``). benchmarks/ is not a package: its code imports its siblings
    (``common``, ``tasks``, ``speed.*``) by name, so the folder goes on sys.path, as when a
    script runs there, and each module is imported once under that name."""
    if str(BENCH) not in sys.path:
        sys.path.append(str(BENCH))
    return importlib.import_module(name.replace("/", "."))


def random_rbm(d: int, h: int, scale: float = 1.0, seed: int = 0, device: str | torch.device = "cpu",
               **config) -> RBM:
    """An RBM with W, b and c all drawn from N(0, scale^2), seeded (on the CPU, so the same on
    every device), then moved to ``device``: far from the trivial model, so energies,
    conditionals and partition functions are tested where they are non-trivial."""
    g = torch.Generator().manual_seed(seed)
    m = RBM(RBMConfig(n_visible=d, n_hidden=h, init_std=scale, **config), generator=g)
    with torch.no_grad():
        m.b.normal_(0.0, scale, generator=g)
        m.c.normal_(0.0, scale, generator=g)
    return m.to(device)


def cd_trained_rbm(x: torch.Tensor, n_hidden: int, *, lr: float, epochs: int,
                   batch_size: int, seed: int = 0) -> tuple[RBM, torch.Generator]:
    """An RBM over x (N, D) after ``epochs`` of CD-1 by a hand-written SGD loop (momentum 0.5),
    started from the data's base rates; everything drawn from one generator seeded ``seed``,
    returned for the caller to go on drawing from."""
    g = torch.Generator().manual_seed(seed)
    model = RBM(RBMConfig(n_visible=x.shape[1], n_hidden=n_hidden), generator=g)
    model.init_from_data(x, g)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.5)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(batch_size):
            opt.zero_grad()
            model.loss(x[idx], g)["loss"].backward()
            opt.step()
    return model, g


def real_data_file(relpath: str, root: str | None = None) -> Path:
    """Path of a real data file under ``root`` (default: GENZOO_DATA now), or skip the test
    naming what is missing."""
    root = root if root is not None else os.environ.get("GENZOO_DATA")
    if not root:
        pytest.skip("GENZOO_DATA is not set; integration tests need the real data sets")
    path = Path(root) / relpath
    if not path.is_file():
        pytest.skip(f"{path} not found; set GENZOO_DATA to the folder holding the data sets")
    return path


def killed_at_rename(monkeypatch, module, suffix: str):
    """A context in which ``module.os.replace`` raises RuntimeError("killed") when it would
    rename a file whose name ends with ``suffix`` (a process killed at that point of a
    multi-file commit), every other rename going through; the context expects the error."""
    import contextlib

    real_replace = os.replace

    def replace(src, dst):
        if str(src).endswith(suffix):
            raise RuntimeError("killed")
        real_replace(src, dst)

    @contextlib.contextmanager
    def killed():
        with monkeypatch.context() as patch, pytest.raises(RuntimeError, match="killed"):
            patch.setattr(module.os, "replace", replace)
            yield

    return killed()


def fake_bundle(train: torch.Tensor, valid: torch.Tensor, test: torch.Tensor):
    """What the evaluation reads of a DataBundle: ``train``/``valid``/``test`` splits with an
    ``x``, ``split(name)`` and ``train_x(epoch)`` (the training data of an epoch)."""
    from types import SimpleNamespace

    b = SimpleNamespace(train=SimpleNamespace(x=train), valid=SimpleNamespace(x=valid),
                        test=SimpleNamespace(x=test))
    b.split = lambda name: getattr(b, name)
    b.train_x = lambda epoch: train
    return b


def dbm_digits_config(hidden: str, steps: int, extra=(), model: str = "dbm"):
    """A RunConfig of a small DBM-family model on 500 thresholded digits (100 for evaluation),
    50 chains, SGD with momentum 0.5 at a constant lr 0.05 for ``steps`` steps; ``extra``
    overrides come last and win."""
    from genzoo.run_config import RunConfig

    return RunConfig.default(model).with_overrides([
        "data.name=digits", "data.binarize=threshold", "data.n_train=500", "data.n_eval=100",
        f"model.hidden={hidden}", "model.n_chains=50", f"train.max_steps={steps}",
        "train.batch_size=50", "train.lr=0.05", "train.progress=false", "train.grid_samples=0",
        "train.momentum=0.5", "train.lr_schedule=constant", *extra,
    ])


def started_dbm_batch(m, n: int, seed: int = 0):
    """(generator, x, q): a batch x (n, D) of fair coin flips (float64) drawn from a generator
    seeded with ``seed``, the DBM's persistent chains started from it and q, its mean-field
    posteriors after the model's training iterations; the generator is returned for the
    draws that follow."""
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((n, m.n_visible), 0.5, dtype=torch.float64), generator=g)
    m.start_chains(x, g)
    with torch.no_grad():
        q, _ = m.mean_field(x, max_iters=m.config.mf_train_iters)
    return g, x, q
