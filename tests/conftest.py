"""Shared fixtures: where the real data sets are, and small run directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def real_data_file(relpath: str) -> Path:
    """Path of a real data file under GENZOO_DATA, or skip the test naming what is missing."""
    root = os.environ.get("GENZOO_DATA")
    if not root:
        pytest.skip("GENZOO_DATA is not set; integration tests need the real data sets")
    path = Path(root) / relpath
    if not path.is_file():
        pytest.skip(f"{path} not found; set GENZOO_DATA to the folder holding the data sets")
    return path


@pytest.fixture
def binarized_mnist_available() -> Path:
    return real_data_file("binarized_mnist/binarized_mnist.npz")
