"""Progress of long work: silent by default, reported through the progress interface inside
progress.reporting, shown on stderr as bars on a terminal or one line per phase elsewhere."""

from __future__ import annotations

import io

import pytest
import torch

from genzoo.core.registry import get_model_spec
from genzoo.evaluation import progress
from genzoo.evaluation.ais import ais_log_partition, linear_schedule, reverse_ais_log_partition
from genzoo.evaluation.config import EvalConfig
from genzoo.evaluation.exact import exact_log_partition
from genzoo.evaluation.frechet import FeatureClassifier, classifier_features
from genzoo.evaluation.importance import importance_log_px
from genzoo.evaluation.likelihood import exact_nll
from genzoo.evaluation.mmd import mmd_permutation_test
from genzoo.evaluation.parzen import select_parzen_bandwidth
from genzoo.evaluation.sample_based import draw_samples
from genzoo.models.boltzmann.rbm import RBM, RBMConfig
from genzoo.run_config import RunConfig


class Recorder:
    """A reporter that keeps every call: ("start" | "update" | "end", name, done, total)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, int]] = []

    def _keep(self, event: str, stage: progress.Stage) -> None:
        self.calls.append((event, stage.name, stage.done, stage.total))

    def start(self, stage: progress.Stage) -> None:
        self._keep("start", stage)

    def update(self, stage: progress.Stage) -> None:
        self._keep("update", stage)

    def end(self, stage: progress.Stage) -> None:
        self._keep("end", stage)

    def ends(self) -> list[tuple[str, int, int]]:
        """(name, done, total) of every finished stage, in order."""
        return [c[1:] for c in self.calls if c[0] == "end"]


def _recorded(work) -> Recorder:
    rec = Recorder()
    with progress.reporting(rec):
        work()
    return rec


def _finished(rec: Recorder, prefix: str) -> tuple[str, int, int]:
    """The one finished stage whose name starts with ``prefix``; it ended with all its steps."""
    found = [e for e in rec.ends() if e[0].startswith(prefix)]
    assert len(found) == 1, rec.ends()
    _, done, total = found[0]
    assert done == total > 0, found[0]
    return found[0]


def _rbm_and_base():
    torch.manual_seed(0)
    rbm = RBM(RBMConfig(n_visible=6, n_hidden=3)).double()
    x = torch.bernoulli(torch.full((20, 6), 0.4, dtype=torch.float64))
    return rbm, rbm.ais_base(x)


def test_stages_report_only_inside_reporting_and_end_with_the_total(monkeypatch):
    monkeypatch.setattr(progress, "UPDATE_INTERVAL_S", 0.0)
    with progress.Stage("outside", 3) as silent:
        for _ in range(3):
            silent.advance()  # no reporter: nothing happens
    assert silent.done == 3
    rec = Recorder()
    with progress.reporting(rec), progress.Stage("inside", 3, "things") as st:
        for k in range(1, 4):
            st.update(k)
    assert rec.calls == [("start", "inside", 0, 3), ("update", "inside", 1, 3),
                         ("update", "inside", 2, 3), ("update", "inside", 3, 3),
                         ("end", "inside", 3, 3)]
    assert st.elapsed_s >= 0 and st.seconds_left == 0
    with progress.reporting(rec):
        progress.Stage("never entered", 2).advance(2)
    assert len(rec.calls) == 5  # a stage reports only inside its with block


def test_updates_are_throttled_but_the_end_always_arrives(monkeypatch):
    monkeypatch.setattr(progress, "UPDATE_INTERVAL_S", 3600.0)
    rec = Recorder()
    with progress.reporting(rec), progress.Stage("quick", 1000) as st:
        for _ in range(1000):
            st.advance()
    assert rec.calls == [("start", "quick", 0, 1000), ("end", "quick", 1000, 1000)]


def test_a_stage_that_raises_ends_as_failed():
    rec, failed = Recorder(), []
    with pytest.raises(KeyError), progress.reporting(rec), progress.Stage("broken", 5) as st:
        st.advance(2)
        failed.append(st)
        raise KeyError("x")
    assert rec.ends() == [("broken", 2, 5)] and failed[0].failed


def test_summary_reporter_writes_one_line_per_phase():
    out = io.StringIO()
    with progress.reporting(progress.SummaryReporter(out)):
        for name in ("first", "second"):
            with progress.Stage(name, 4, "temperatures") as st:
                st.advance(4)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("genzoo: first: 4/4 temperatures in ") and lines[0].endswith(" s")
    assert lines[1].startswith("genzoo: second: 4/4 temperatures in ")


def test_bar_reporter_draws_a_bar_with_the_name_and_the_count():
    out = io.StringIO()
    with progress.reporting(progress.BarReporter(out)), progress.Stage("annealing", 7) as st:
        st.advance(7)
    text = out.getvalue()
    assert "annealing" in text and "7/7" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_stderr_reporter_is_silent_when_disabled_bars_on_a_terminal_else_a_summary(monkeypatch):
    assert progress.stderr_reporter(False) is None
    # Under pytest stderr is captured, not a terminal.
    assert isinstance(progress.stderr_reporter(True), progress.SummaryReporter)
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert isinstance(progress.stderr_reporter(True), progress.BarReporter)


def test_a_stage_of_no_steps_says_nothing():
    rec = _recorded(lambda: progress.Stage("burn-in", 0).__enter__())
    assert rec.calls == []


def test_a_library_call_is_silent_and_ais_reports_its_temperatures(capsys):
    rbm, base = _rbm_and_base()
    ais_log_partition(rbm, base, linear_schedule(50), 4, torch.Generator().manual_seed(1))
    assert capsys.readouterr() == ("", "")  # no reporter: nothing anywhere
    rec = _recorded(lambda: ais_log_partition(rbm, base, linear_schedule(50), 4,
                                              torch.Generator().manual_seed(1)))
    assert _finished(rec, "forward AIS, 4 runs")[1:] == (49, 49)
    # Two shards of two runs: the stage counts the temperatures of both.
    rec = _recorded(lambda: ais_log_partition(rbm, base, linear_schedule(50), 4,
                                              torch.Generator().manual_seed(1), batch_size=2))
    assert _finished(rec, "forward AIS, 4 runs")[1:] == (98, 98)
    v = torch.bernoulli(torch.full((4, 6), 0.5, dtype=torch.float64))
    rec = _recorded(lambda: reverse_ais_log_partition(rbm, base, linear_schedule(50), v,
                                                      torch.Generator().manual_seed(1)))
    assert _finished(rec, "reverse AIS, 4 runs")[1:] == (49, 49)


def test_the_reverse_ais_burn_in_and_mean_field_report_their_steps():
    from genzoo.evaluation.energy import model_samples_for_reverse_ais
    from genzoo.evaluation.variational import variational_free_energies

    rbm, base = _rbm_and_base()
    rec = _recorded(lambda: model_samples_for_reverse_ais(rbm, base, 3, 5,
                                                          torch.Generator().manual_seed(0)))
    assert _finished(rec, "Gibbs burn-in of 3 chains")[1:] == (5, 5)
    dbm = _tiny("dbm").double()
    x = torch.bernoulli(torch.full((5, 6), 0.5, dtype=torch.float64))
    rec = _recorded(lambda: variational_free_energies(dbm, x, batch_size=2))
    assert _finished(rec, "mean-field free energies, 5 examples")[1:] == (5, 5)


def test_exact_enumeration_reports_its_states():
    rbm, _ = _rbm_and_base()
    rec = _recorded(lambda: exact_log_partition(rbm, chunk=3))
    assert _finished(rec, "exact enumeration")[1:] == (8, 8)  # 2^3 hidden states


def _tiny(name: str):
    cfg = RunConfig.default(name).with_overrides(list(get_model_spec(name).cls.test_overrides))
    torch.manual_seed(0)
    return get_model_spec(name).build(cfg.model.replace(n_visible=6))


def test_importance_sampling_reports_its_draws():
    x = torch.bernoulli(torch.full((5, 6), 0.5))
    rec = _recorded(lambda: importance_log_px(_tiny("vae"), x, 7, torch.Generator()
                                              .manual_seed(0), batch_size=2, max_draws=4))
    assert _finished(rec, "importance sampling, 5 examples x 7 draws")[1:] == (35, 35)


def test_exact_likelihood_reports_its_examples():
    x = torch.bernoulli(torch.full((5, 6), 0.5))
    rec = _recorded(lambda: exact_nll(_tiny("nade"), x, EvalConfig(batch_size=2)))
    assert _finished(rec, "exact likelihood")[1:] == (5, 5)


def test_sample_based_measures_report_their_phases():
    g = torch.Generator().manual_seed(0)
    samples = torch.rand(30, 6, generator=g, dtype=torch.float64)
    x = torch.rand(11, 6, generator=g, dtype=torch.float64)
    rec = _recorded(lambda: select_parzen_bandwidth(samples, x, [0.1, 0.5], batch_size=4))
    assert _finished(rec, "Parzen window, 2 bandwidths")[1:] == (11, 11)
    rec = _recorded(lambda: mmd_permutation_test(samples, x, [1.0], 9, g, chunk=4))
    assert _finished(rec, "MMD permutation test")[1:] == (9, 9)
    classifier = FeatureClassifier(6, 10, 8, 4).eval()
    rec = _recorded(lambda: classifier_features(classifier, x, batch_size=4))
    assert _finished(rec, "Fréchet features")[1:] == (11, 11)
    rec = _recorded(lambda: draw_samples(_tiny("rbm"), 9, g, batch_size=4))
    assert _finished(rec, "drawing samples")[1:] == (9, 9)
