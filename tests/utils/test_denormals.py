"""Subnormal floats are flushed to zero while genzoo trains or evaluates (they slow x86
matrix products down), the mode is restored afterwards, GENZOO_DENORMALS=ieee keeps them, and
in a fresh process the command line's worker threads flush too."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from genzoo import cli
from genzoo.core.errors import ConfigError
from genzoo.utils import denormals

pytestmark = pytest.mark.skipif(not torch.set_flush_denormal(False),
                                reason="this CPU has no flush-to-zero mode")


def test_flushed_turns_the_mode_on_and_restores_it(monkeypatch):
    monkeypatch.delenv(denormals.ENV_VAR, raising=False)
    assert not denormals.flushing()
    with denormals.flushed() as on:
        assert on and denormals.flushing()
        with denormals.flushed(False) as inner:  # nested: each block restores its own
            assert not inner and not denormals.flushing()
        assert denormals.flushing()
    assert not denormals.flushing()
    # the calling thread computes the subnormal exactly again
    assert (torch.tensor([1e-30]) * 1e-10).item() == pytest.approx(1e-40, rel=1e-3)


def test_the_environment_keeps_ieee_or_names_its_values(monkeypatch):
    monkeypatch.setenv(denormals.ENV_VAR, "ieee")
    with denormals.flushed() as on:
        assert not on and not denormals.flushing()
    monkeypatch.setenv(denormals.ENV_VAR, "off")
    with pytest.raises(ConfigError, match="'flush'.*'ieee'"):
        denormals.wanted()


def test_the_command_line_runs_each_command_flushed(monkeypatch, capsys):
    monkeypatch.delenv(denormals.ENV_VAR, raising=False)
    seen = []
    monkeypatch.setitem(cli._COMMANDS, "models", lambda args: seen.append(denormals.flushing()) or 0)
    assert cli.main(["models"]) == 0
    assert seen == [True] and not denormals.flushing()
    monkeypatch.setenv(denormals.ENV_VAR, "ieee")
    assert cli.main(["models"]) == 0 and seen == [True, False]
    monkeypatch.setenv(denormals.ENV_VAR, "bogus")
    assert cli.main(["models"]) == cli.EXIT_USER_ERROR
    assert "GENZOO_DENORMALS='bogus'" in capsys.readouterr().err


def test_in_a_fresh_process_every_worker_thread_flushes():
    # Threads inherit the mode of the thread that starts them: set before torch's first
    # parallel operation (as the command line does), it reaches every worker; set after, only
    # the calling thread (the limitation the module's docstring tells API users about).
    code = ("import torch; from genzoo.utils import denormals as d; torch.set_num_threads(2)\n"
            "with d.flushed(True): print(d.flushing_fraction())\n"
            "print(d.flushing_fraction())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert float(out[0]) == 1.0
    # after the block the calling thread is back to IEEE; the workers it started keep flushing
    assert 0.0 < float(out[1]) < 1.0
