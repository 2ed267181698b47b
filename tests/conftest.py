"""Shared fixtures: where the real data sets are."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import real_data_file


@pytest.fixture
def binarized_mnist_available() -> Path:
    return real_data_file("binarized_mnist/binarized_mnist.npz")
