"""Learning-rate and momentum schedules, and the optimizer built from the config."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.training.config import TrainConfig
from genzoo.training.schedule import build_optimizer, learning_rate, momentum, total_steps


def test_total_steps_is_capped_by_max_steps():
    assert total_steps(TrainConfig(epochs=3), 7) == 21
    assert total_steps(TrainConfig(epochs=3, max_steps=10), 7) == 10
    assert total_steps(TrainConfig(epochs=3, max_steps=100), 7) == 21


def test_constant_linear_and_exponential_learning_rates():
    const = TrainConfig(lr=0.2)
    assert [learning_rate(const, s, 10) for s in (0, 5, 9)] == [0.2, 0.2, 0.2]
    lin = TrainConfig(lr=0.2, lr_schedule="linear", lr_final_factor=0.1)
    assert learning_rate(lin, 0, 10) == pytest.approx(0.2)
    assert learning_rate(lin, 5, 10) == pytest.approx(0.2 * (1 - 0.9 * 0.5))
    assert learning_rate(lin, 10, 10) == pytest.approx(0.02)
    exp = TrainConfig(lr=0.2, lr_schedule="exponential", lr_final_factor=0.01)
    assert learning_rate(exp, 0, 100) == pytest.approx(0.2)
    assert learning_rate(exp, 50, 100) == pytest.approx(0.02)
    assert learning_rate(exp, 100, 100) == pytest.approx(0.002)
    # Each step multiplies by lr_final_factor ** (1 / total), as the config documents.
    ratio = learning_rate(exp, 31, 100) / learning_rate(exp, 30, 100)
    assert ratio == pytest.approx(0.01 ** (1 / 100))


def test_momentum_ramp_for_sgd_and_beta1_for_adam():
    sgd = TrainConfig(initial_momentum=0.5, momentum=0.9, momentum_warmup_epochs=5)
    assert [momentum(sgd, e) for e in range(7)] == [0.5] * 5 + [0.9] * 2
    assert momentum(TrainConfig(momentum_warmup_epochs=0), 0) == 0.9
    adam = TrainConfig(optimizer="adam", momentum=0.8)
    assert momentum(adam, 0) == 0.8


def test_build_optimizer_has_no_weight_decay_and_the_configured_momentum():
    p = [torch.nn.Parameter(torch.zeros(3))]
    sgd = build_optimizer(p, TrainConfig(lr=0.3, initial_momentum=0.4))
    group = sgd.param_groups[0]
    assert isinstance(sgd, torch.optim.SGD) and group["lr"] == 0.3
    assert group["momentum"] == 0.4 and group["weight_decay"] == 0 and not group["nesterov"]
    adam = build_optimizer(p, TrainConfig(optimizer="adam", momentum=0.7))
    assert isinstance(adam, torch.optim.Adam)
    assert adam.param_groups[0]["betas"] == (0.7, 0.999)
    assert adam.param_groups[0]["weight_decay"] == 0
    assert math.isclose(adam.param_groups[0]["lr"], 0.01)
