"""Learning-rate and momentum schedules, and the optimizer built from the config."""

from __future__ import annotations

import math

import pytest
import torch

from genzoo.core.errors import ConfigError
from genzoo.training.config import TrainConfig
from genzoo.training.schedule import (
    build_optimizer,
    learning_rate,
    lr_stage,
    momentum,
    total_steps,
)


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


def test_staged_schedule_is_burda_et_al_over_3280_epochs():
    """n = 8 stages over 3^8 - 1 = 3280 epochs: 3^i epochs at lr * 10^(-i/7) (Burda, Grosse &
    Salakhutdinov 2016), whatever the number of batches per epoch."""
    cfg = TrainConfig(lr=1e-3, lr_schedule="staged", lr_stages=8, lr_final_factor=0.1)
    bpe = 7
    total = 3280 * bpe
    ends = [sum(3**j for j in range(i + 1)) for i in range(8)]  # 1, 4, 13, ..., 3280 epochs
    assert ends == [1, 4, 13, 40, 121, 364, 1093, 3280]
    start = 0
    for i, end in enumerate(ends):
        for epoch in (start, end - 1):
            for step in (epoch * bpe, (epoch + 1) * bpe - 1):
                assert lr_stage(8, step, total) == i
                assert learning_rate(cfg, step, total) == pytest.approx(1e-3 * 10 ** (-i / 7))
        start = end
    assert learning_rate(cfg, total, total) == pytest.approx(1e-4)


def test_staged_schedule_scales_to_any_length_and_one_stage_is_constant():
    cfg = TrainConfig(lr=0.5, lr_schedule="staged", lr_stages=3, lr_final_factor=0.25)
    # 3 stages over 26 steps: lengths 2, 6, 18.
    stages = [lr_stage(3, s, 26) for s in range(26)]
    assert stages == [0] * 2 + [1] * 6 + [2] * 18
    assert [learning_rate(cfg, s, 26) for s in (0, 2, 8)] == pytest.approx([0.5, 0.25, 0.125])
    # A run shorter than the stages still ends in the last one.
    assert lr_stage(3, 0, 1) == 0 and lr_stage(3, 1, 1) == 2
    one = TrainConfig(lr=0.3, lr_schedule="staged", lr_stages=1, lr_final_factor=0.1)
    assert learning_rate(one, 5, 10) == 0.3
    for bad in ({"lr_stages": 0}, {"adam_eps": 0.0}):
        with pytest.raises(ConfigError, match="train."):
            TrainConfig(**bad)


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
    assert adam.param_groups[0]["eps"] == 1e-8
    assert build_optimizer(p, TrainConfig(optimizer="adam", adam_eps=1e-4)).param_groups[0][
        "eps"] == 1e-4
    assert adam.param_groups[0]["weight_decay"] == 0
    assert math.isclose(adam.param_groups[0]["lr"], 0.01)
