"""The worked example of docs/extending.md: a model in one file (a mixture of Bernoullis) gets
the command line, training, evaluation, sampling, inpainting and the conformance suite without
any other file changing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import test_conformance as conformance
import torch

from genzoo.core import registry
from genzoo.ops.enumeration import binary_states

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"
EXAMPLE = ROOT / "docs" / "examples" / "bernoulli_mixture.py"
NAME = "bernoulli-mixture"


@pytest.fixture
def example_registered():
    """Import the example as a user would (its file on sys.path), and take it out of the
    registry afterwards so that no other test sees it."""
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        import bernoulli_mixture

        yield bernoulli_mixture
    finally:
        sys.path.remove(str(EXAMPLE.parent))
        registry._REGISTRY.pop(NAME, None)
        sys.modules.pop("bernoulli_mixture", None)


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_page_shows_the_example_file():
    text = DOC.read_text()
    source = EXAMPLE.read_text()
    assert '--8<-- "docs/examples/bernoulli_mixture.py"' in text
    lines = {line.strip() for line in source.splitlines()}
    blocks = _python_blocks(text.split("## 4. Using it")[0])
    assert len(blocks) >= 3
    for block in blocks:
        for line in block.splitlines():
            if line.strip() and "..." not in line:
                assert line.strip() in lines, line


def test_the_example_conforms_to_the_contracts_it_declares(example_registered, tmp_path):
    conformance.test_every_model_carries_tiny_settings()
    conformance.test_declared_capabilities_conform_to_their_protocols(NAME)
    conformance.test_declared_capabilities_behave_on_a_tiny_instance(NAME)
    conformance.test_one_training_step_changes_parameters(NAME, tmp_path / "a")
    conformance.test_loss_is_a_dict_with_a_differentiable_scalar(NAME)
    conformance.test_sample_shape_dtype_device_and_determinism(NAME)
    conformance.test_state_round_trip_through_a_checkpoint(NAME, tmp_path / "b")
    conformance.test_building_is_deterministic_under_a_seed(NAME)


def test_the_example_likelihood_sums_to_one_over_all_binary_vectors(example_registered):
    cfg = example_registered.BernoulliMixtureConfig(n_visible=6, n_components=3)
    model = example_registered.BernoulliMixture(cfg).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.alpha.normal_(generator=g)
        model.logits.normal_(0.0, 2.0, generator=g)
    x = binary_states(torch.arange(2**6), 6, torch.float64)
    total = torch.logsumexp(model.log_prob(x), 0)
    assert abs(float(total)) < 1e-12
    # Exact inpainting: with nothing observed it samples p(x); with everything observed it
    # returns x.
    everything = torch.ones(6, dtype=torch.bool)
    assert torch.equal(model.inpaint(x[:5], everything, g, n_samples=2)[1], x[:5])


def test_the_python_walkthrough_runs(example_registered, tmp_path, monkeypatch):
    block = next(b for b in _python_blocks(DOC.read_text()) if "Trainer(" in b)
    monkeypatch.chdir(tmp_path)
    # The page's own code, run as a reader would paste it.
    exec(compile(block, "docs/extending.md", "exec"), {"print": lambda *a: None})  # noqa: S102
    assert (tmp_path / "runs" / "mix-digits" / "checkpoint.json").exists()


def test_the_command_line_trains_evaluates_samples_and_inpaints_a_plugin(tmp_path):
    env = {**os.environ, "GENZOO_PLUGINS": str(EXAMPLE)}
    run = tmp_path / "run"

    def genzoo(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "genzoo", *args], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=300, check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert NAME in genzoo("models")
    genzoo("train", NAME, "--data", "digits", "--set", "data.binarize=threshold",
           "--set", "model.n_components=4", "--set", "train.epochs=2",
           "--set", "train.lr=0.05", "--set", "train.progress=false", "--out", str(run))
    report = json.loads(genzoo("evaluate", str(run), "--json"))
    assert report["split"] == "test"
    assert 0 < report["nll_nats"] < 64 * 0.7  # below the 44 nats of independent fair coins
    genzoo("sample", str(run), "-n", "9", "--out", str(tmp_path / "s.png"))
    genzoo("inpaint", str(run), "-n", "4", "--out", str(tmp_path / "i.png"))
    assert (tmp_path / "s.png").stat().st_size > 0 and (tmp_path / "i.png").stat().st_size > 0
    # Without the plug-in the run cannot be rebuilt, and genzoo says so in one line.
    env.pop("GENZOO_PLUGINS")
    out = subprocess.run([sys.executable, "-m", "genzoo", "evaluate", str(run)], env=env,
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode != 0 and NAME in out.stderr and "Traceback" not in out.stderr
