"""Up-front memory estimates (genzoo.utils.memory) and device checks (genzoo.utils.devices)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genzoo.core.errors import GenzooError
from genzoo.core.registry import get_model_spec
from genzoo.run_config import RunConfig
from genzoo.utils.devices import resolve_device
from genzoo.utils.memory import (
    available_memory,
    check_memory,
    check_model_fits,
    format_bytes,
    module_bytes,
)


def _rbm_builder(n_hidden: int):
    cfg = RunConfig.default("rbm").model
    cfg = dataclasses.replace(cfg, n_visible=64, n_hidden=n_hidden)
    return lambda: get_model_spec("rbm").build(cfg)


def test_available_memory_is_known_and_positive_on_linux():
    available = available_memory()
    assert available is None or available > 0


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * 2**30 + 2**29) == "3.5 GiB"
    assert format_bytes(2**60) == "1024.0 PiB"


def test_check_memory_refuses_with_both_numbers_and_the_fix():
    check_memory(2**20, "a small thing", "unused", available=2**30)
    with pytest.raises(GenzooError, match=r"needs about 2\.0 GiB .* 1\.0 GiB available; use less"):
        check_memory(2**31, "a big thing", "use less", available=2**30)


def test_module_bytes_counts_parameters_without_allocating():
    # W (64, H) + b (64) + c (H), float32: a 10**12-unit RBM is measured, not built.
    assert module_bytes(_rbm_builder(10)) == 4 * (64 * 10 + 64 + 10)
    assert module_bytes(_rbm_builder(10**12)) == 4 * (64 * 10**12 + 64 + 10**12)


def test_module_bytes_is_none_when_the_module_cannot_be_measured():
    def needs_values():
        return torch.nn.Linear(2, 2).weight.sum().item()

    assert module_bytes(needs_values) is None


def test_check_model_fits_refuses_a_huge_model():
    check_model_fits(_rbm_builder(10), "rbm", "unused")
    with pytest.raises(GenzooError, match=r"rbm with 10\*\*12 hidden units needs about .*TiB"):
        check_model_fits(_rbm_builder(10**12), "rbm with 10**12 hidden units",
                         "use a smaller model.n_hidden")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(GenzooError, match="is not a device; use cpu, cuda or cuda:N"):
        resolve_device("gpu")
    with pytest.raises(GenzooError, match="genzoo runs on cpu or cuda"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(GenzooError, match="CUDA is not available.*train.device=cpu"):
            resolve_device("cuda:0", option="train.device")
    else:
        with pytest.raises(GenzooError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
