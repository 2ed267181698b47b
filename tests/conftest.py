"""Shared fixtures: the device under test and where the real data sets are.

``GENZOO_TEST_DEVICE`` (default cpu) is the one switch: the ``device`` fixture hands it to the
tests that can run on an accelerator. When the machine lacks that device, every test is
skipped with the reason, once for the session, rather than erroring one by one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support import DEVICE_ENV, real_data_file, selected_device, unavailable_reason


def pytest_configure(config):
    try:
        selected_device()
    except RuntimeError as exc:
        raise pytest.UsageError(f"{DEVICE_ENV}: {exc}; use cpu, cuda or cuda:N") from None


def pytest_report_header(config):
    return f"device under test: {selected_device()} ({DEVICE_ENV})"


def pytest_collection_modifyitems(config, items):
    reason = unavailable_reason(selected_device())
    if reason is not None:
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def device() -> torch.device:
    """The device under test (``$GENZOO_TEST_DEVICE``, default cpu)."""
    return selected_device()


@pytest.fixture
def binarized_mnist_available() -> Path:
    return real_data_file("binarized_mnist/binarized_mnist.npz")
