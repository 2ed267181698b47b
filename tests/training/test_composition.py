"""The Trainer's shape: callbacks added with ``add_callback`` see every hook in order, and no
class of the training package is assembled from mixins."""

from __future__ import annotations

import ast
from pathlib import Path

import genzoo.training
from genzoo.training import Callback, Trainer


class Hooks(Callback):
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def on_fit_start(self, trainer):
        self.calls.append(("fit_start", trainer.step))

    def on_step_end(self, trainer, loss):
        self.calls.append(("step_end", trainer.step))

    def on_validation(self, trainer, figures):
        assert set(figures) == {"valid_nll", "valid_mean_p"}
        self.calls.append(("validation", trainer.step))

    def on_log(self, trainer, row):
        self.calls.append(("log", int(row["step"])))

    def on_checkpoint(self, trainer):
        self.calls.append(("checkpoint", trainer.step))

    def on_fit_end(self, trainer, metrics):
        self.calls.append(("fit_end", metrics["step"]))


def test_add_callback_runs_every_hook_after_the_given_callbacks(toy, bundle, tmp_path):
    cfg = toy.make_config(epochs=1, batch_size=25, log_every=1, validate_every=2)
    given, added = Hooks(), Hooks()
    trainer = Trainer(toy.build(cfg), cfg, bundle, tmp_path / "run", callbacks=[given])
    trainer.add_callback(added)
    assert trainer.callbacks == [given, added]
    trainer.fit()
    # Two steps: the step-0 baseline is validated before the first step and logged with its row.
    assert added.calls == given.calls == [
        ("validation", 0), ("fit_start", 0),
        ("step_end", 1), ("log", 0), ("log", 1),
        ("step_end", 2), ("validation", 2), ("log", 2), ("checkpoint", 2),
        ("fit_end", 2),
    ]


def test_no_class_of_the_training_package_inherits_from_a_mixin():
    root = Path(genzoo.training.__file__).parent
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b) for b in node.bases]
                assert not [b for b in bases if "Mixin" in b], f"{path.name}: {node.name}{bases}"
