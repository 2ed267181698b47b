"""Fixtures of the data tests. No test here touches the network: downloads are forbidden by
``GENZOO_OFFLINE=1`` and by a fetcher that fails the test, unless a test installs its own fake."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from genzoo.data import files

SHARED = os.environ.get("GENZOO_DATA")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setenv("GENZOO_OFFLINE", "1")

    def refuse(url, dest, timeout=None):
        pytest.fail(f"a test tried to download {url}")

    monkeypatch.setattr(files, "_fetch", refuse)


def _real_file(relpath: str) -> Path:
    if not SHARED:
        pytest.skip("GENZOO_DATA is unset; set it to the data folder to run real-data tests")
    path = Path(SHARED) / relpath
    if not path.is_file():
        pytest.skip(f"{path} is missing; set GENZOO_DATA to the folder holding the data sets")
    return path


@pytest.fixture
def real_file():
    """``real_file(relpath)``: the path of a real data file under $GENZOO_DATA, or skip."""
    return _real_file


@pytest.fixture
def tmp_data(tmp_path, monkeypatch) -> Path:
    """An empty data directory, set as GENZOO_DATA."""
    monkeypatch.setenv("GENZOO_DATA", str(tmp_path))
    return tmp_path
