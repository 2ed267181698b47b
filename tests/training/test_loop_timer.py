"""LoopTimer times a fit's training loop: from its start to the end of its last step."""

from __future__ import annotations

import time

from genzoo.training import Trainer
from genzoo.training.callbacks import Callback, LoopTimer


class SlowValidation(Callback):
    """Sleeps at every validation, so time spent there shows in a timer that counted it."""

    def on_validation(self, trainer, figures):
        time.sleep(0.2)


def test_the_timer_counts_the_steps_and_leaves_out_the_final_validation(toy, bundle, tmp_path):
    timer = LoopTimer()
    assert timer.seconds == 0.0
    cfg = toy.make_config()
    t0 = time.perf_counter()
    Trainer(toy.build(cfg), cfg, bundle, tmp_path / "run",
            callbacks=[timer, SlowValidation()]).fit()
    total = time.perf_counter() - t0
    assert 0.0 < timer.seconds < total - 0.2  # the validation after the last step is not in it


def test_timed_fit_trains_without_grids_and_returns_the_loop_time(toy, bundle, tmp_path):
    from genzoo.training.timing import timed_fit

    cfg = toy.make_config()
    seconds, metrics = timed_fit(toy.build(cfg), toy.name, cfg.data, bundle, tmp_path / "run",
                                 epochs=1, batch_size=8, lr=0.1)
    assert seconds > 0 and metrics["step"] == 7  # 50 examples, batches of 8
    assert not (tmp_path / "run" / "samples.png").exists()  # grid_samples=0 by default
