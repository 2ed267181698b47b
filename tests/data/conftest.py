"""Fixtures of the data tests. No test here touches the network: downloads are forbidden by
``GENZOO_OFFLINE=1`` and by a fetcher that fails the test, unless a test installs its own fake."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import real_data_file

from genzoo.data import files

_SHARED = os.environ.get("GENZOO_DATA")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setenv("GENZOO_OFFLINE", "1")

    def refuse(url, dest, timeout=None):
        pytest.fail(f"a test tried to download {url}")

    monkeypatch.setattr(files, "_fetch", refuse)


@pytest.fixture
def real_file():
    """``real_file(relpath)``: the path of a real data file under $GENZOO_DATA, or skip."""
    # GENZOO_DATA as the session started: some tests point it at a temporary folder.
    return lambda relpath: real_data_file(relpath, root=_SHARED)


@pytest.fixture
def tmp_data(tmp_path, monkeypatch) -> Path:
    """An empty data directory, set as GENZOO_DATA."""
    monkeypatch.setenv("GENZOO_DATA", str(tmp_path))
    return tmp_path
