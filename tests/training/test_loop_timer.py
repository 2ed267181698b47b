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
