"""Progress of long estimators: silent by default, reported inside progress.reporting."""

from __future__ import annotations

import torch

from genzoo.evaluation import progress
from genzoo.evaluation.ais import ais_log_partition, linear_schedule
from genzoo.models.boltzmann.rbm import RBM, RBMConfig


def _rbm_and_base():
    torch.manual_seed(0)
    rbm = RBM(RBMConfig(n_visible=6, n_hidden=3)).double()
    x = torch.bernoulli(torch.full((20, 6), 0.4, dtype=torch.float64))
    return rbm, rbm.ais_base(x)


def test_stages_report_only_inside_reporting_and_end_with_the_total():
    seen = []
    silent = progress.stage("outside", 3)
    for k in range(1, 4):
        silent.update(k)  # no reporter: nothing happens
    with progress.reporting(lambda *a: seen.append(a), every_s=0.0):
        st = progress.stage("inside", 3)
        for k in range(1, 4):
            st.update(k)
    assert [a[:3] for a in seen] == [("inside", 1, 3), ("inside", 2, 3), ("inside", 3, 3)]
    assert all(a[3] >= 0 for a in seen)


def test_a_quick_stage_reports_nothing_and_ais_reports_its_temperatures():
    rbm, base = _rbm_and_base()
    quiet, loud = [], []
    with progress.reporting(lambda *a: quiet.append(a), every_s=3600.0):
        ais_log_partition(rbm, base, linear_schedule(50), 4, torch.Generator().manual_seed(1))
    assert quiet == []  # under every_s: a quick evaluation prints nothing
    with progress.reporting(lambda *a: loud.append(a), every_s=0.0):
        ais_log_partition(rbm, base, linear_schedule(50), 4, torch.Generator().manual_seed(1))
    assert loud[-1][1:3] == (49, 49) and loud[-1][0].startswith("forward AIS, 4 runs")
