"""Device hygiene, checked without a GPU: every tensor the library makes follows the device and
dtype of the parameters or the input, and every generator lives where it is drawn on.

Two checks. A scan of src/genzoo for tensor factories and generators made without a
``device=`` outside construction (``__init__``, where the module's ``.to()`` moves what it
registers), each exception listed with its reason. And a behavioural one: every registered
model in float64 on the device under test (``GENZOO_TEST_DEVICE``) must return float64 tensors
on that device from each method its capabilities declare; on the CPU the dtype is what
catches a factory call that forgot the parameters (it makes float32), on a GPU the device too.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from support import gen, needs_cpu

from genzoo.core import protocols
from genzoo.core.registry import get_model_spec, list_models
from genzoo.data import load_data
from genzoo.run_config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "genzoo"
FACTORIES = {"zeros", "ones", "empty", "full", "arange", "linspace", "logspace", "rand", "randn",
             "randint", "randperm", "tensor", "as_tensor", "eye", "scalar_tensor",
             "tril_indices", "triu_indices", "Generator"}  # fmt: skip
CONSTRUCTION = "construction: made on the CPU and registered, then moved by the module's .to()"
COPIED = "copied into a parameter (copy_ crosses devices)"
PROBE = "a 0-d probe whose dtype the input check reads; nothing is computed with it"
HOST_RNG = ("drawn on the host from a CPU generator, then moved, so the draw is the same on "
            "every device")  # fmt: skip
# (path under src/genzoo, or a folder ending in "/"; enclosing function) -> why no device=.
ALLOWED = {
    ("data/", "*"): "data sets are built on the host; the Trainer and estimators move batches",
    ("utils/denormals.py", "*"): "probes of the CPU's flush-to-zero mode",
    ("cli/images.py", "_hidden_pixels"): "a host-side mask, moved with the input by inpaint",
    ("cli/images.py", "_cmd_chain"): HOST_RNG,
    ("evaluation/ais.py", "linear_schedule"): "the temperatures: a host-side float64 schedule",
    ("evaluation/frechet.py", "train_feature_classifier"): "the feature classifier is trained "
    "in float32 on the CPU by design (the same weights on every machine)",
    ("evaluation/mmd.py", "mmd_permutation_test"): HOST_RNG,
    ("evaluation/parzen.py", "<module>"): "the default bandwidth grid, read as floats",
    ("evaluation/parzen.py", "parzen_log_density"): "the bandwidths, moved to the samples' "
    "device on the next line after a host-side check",
    ("evaluation/sample_based.py", "draw_samples"): "samples are gathered on the host in "
    "float64 (documented)",
    ("evaluation/sample_based.py", "median_heuristic_sigmas"): "host-side statistics of data",
    ("evaluation/sample_based.py", "sample_based_report"): "the MMD subset is drawn on the host "
    "with a CPU generator (the data split lives there)",
    ("evaluation/shards.py", "map_shards"): "the shard results are float64 on the host "
    "(documented)",
    ("evaluation/variational.py", "variational_free_energies"): "a generator that is never "
    "drawn from (mean field is deterministic)",
    ("models/autoregressive/deep_nade.py", "_permutation"): CONSTRUCTION,
    ("models/autoregressive/deep_nade.py", "_check_ordering"): "a user's ordering, moved to "
    "the parameters' device after its checks",
    ("models/autoregressive/deep_nade.py", "log_prob_ensemble"): "a user's orderings, moved by "
    "_check_ordering",
    ("models/autoregressive/deep_nade.py", "inpaint"): PROBE,
    ("models/autoregressive/made.py", "_draw_degrees"): CONSTRUCTION,
    ("models/autoregressive/rnade.py", "reset_parameters"): COPIED,
    ("models/boltzmann/_ops.py", "layer_parameters"): CONSTRUCTION,
    ("models/boltzmann/_ops.py", "register_chains"): CONSTRUCTION,
    ("models/boltzmann/_ops.py", "start_chains_at_data"): "row indices drawn on the host by "
    "default (the same rows on every device), moved to the data's device",
    ("models/boltzmann/_sequences.py", "inpaint"): PROBE,
    ("models/boltzmann/dbm.py", "inpaint"): PROBE,
    ("models/directed/dlgm.py", "reset_parameters"): COPIED,
    ("models/hopfield/capacity.py", "*"): "the capacity experiment runs on the CPU",
    ("models/markov/base.py", "autoencoder_parameters"): CONSTRUCTION,
    ("models/markov/base.py", "inpaint"): PROBE,
    ("recipes/dbm_pretraining.py", "pretrain_dbm"): "a CPU generator by default: the hidden "
    "features are drawn on the host (the same layers on every device)",
    ("training/seeding.py", "epoch_permutation"): "the epoch order is drawn on the host (the "
    "same order on every device), then moved by the Trainer",
    ("training/stepper.py", "_update"): "host-side loss figures (Python floats) for the "
    "all-reduce, which moves them",
}


def _factory_calls_without_device(path: Path) -> list[tuple[str, int, str]]:
    """(enclosing function or <module>, line, call) of each ``torch.<factory>(...)`` in ``path``
    that names no ``device=`` (nor passes **kwargs), outside ``__init__``."""
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, where: str, in_init: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name, in_init or child.name == "__init__")
                continue
            f = getattr(child, "func", None)
            if (isinstance(child, ast.Call) and isinstance(f, ast.Attribute)
                    and isinstance(f.value, ast.Name) and f.value.id == "torch"
                    and f.attr in FACTORIES and not in_init
                    and not any(k.arg in ("device", None) for k in child.keywords)):
                found.append((where, child.lineno, f"torch.{f.attr}"))
            visit(child, where, in_init)

    visit(ast.parse(path.read_text(), str(path)), "<module>", False)
    return found


def _allowed(rel: str, where: str) -> bool:
    return any((rel == p or (p.endswith("/") and rel.startswith(p))) and fn in (where, "*")
               for p, fn in ALLOWED)


def test_no_tensor_factory_without_a_device_outside_the_listed_exceptions():
    problems = [
        f"src/genzoo/{rel}:{line} {call}(...) in {where}() has no device="
        for path in sorted(SRC.rglob("*.py"))
        for rel in [path.relative_to(SRC).as_posix()]
        for where, line, call in _factory_calls_without_device(path)
        if not _allowed(rel, where)
    ]
    assert not problems, (
        "make these follow the parameters or the input (device=x.device, x.new_zeros, "
        "torch.zeros_like, torch.Generator(device=...)), or list the function in ALLOWED "
        "with its reason:\n" + "\n".join(problems)
    )


def test_the_scan_sees_what_it_looks_for(tmp_path):
    code = ("import torch\nclass M:\n    def __init__(self):\n        self.w = torch.zeros(3)\n"
            "    def f(self, x):\n        g = torch.Generator()\n"
            "        return torch.rand(3, generator=g, device=x.device) + torch.ones(3)\n")
    (tmp_path / "m.py").write_text(code)
    assert _factory_calls_without_device(tmp_path / "m.py") == [
        ("f", 6, "torch.Generator"), ("f", 7, "torch.ones")]


# -- behaviour: outputs follow the parameters --------------------------------------------------

COMMON = ["data.name=digits", "data.binarize=threshold", "data.n_train=200", "data.n_eval=50",
          "train.max_steps=3", "train.batch_size=20", "train.progress=false",
          "train.grid_samples=4"]
NAMES = [spec.name for spec in list_models()]


def _build_tiny(name: str, device: torch.device):
    """(run config training on ``device``, data bundle, model) of ``name``'s tiny settings."""
    tiny = list(get_model_spec(name).cls.test_overrides)
    cfg = RunConfig.default(name).with_overrides([*COMMON, *tiny, f"train.device={device}"])
    bundle = load_data(cfg.data)
    if any(f.name == "n_visible" for f in dataclasses.fields(cfg.model)):
        cfg = dataclasses.replace(cfg, model=cfg.model.replace(n_visible=bundle.n_features))
    torch.manual_seed(0)  # nn.Module initialisation draws from the global generator
    return cfg, bundle, get_model_spec(name).build(cfg.model)


@pytest.mark.parametrize("name", NAMES)
def test_outputs_follow_the_parameters_dtype_and_device(name, device):
    _, bundle, model = _build_tiny(name, device)
    model = model.to(device=device, dtype=torch.float64)
    x = bundle.train.x[:6].to(device=device, dtype=torch.float64)
    g = gen(device, 0)

    def check(t: torch.Tensor, what: str, dtype: torch.dtype = torch.float64) -> None:
        assert t.dtype == dtype and t.device.type == device.type, (
            f"{name}.{what} is {t.dtype} on {t.device}, the parameters {dtype} on {device}")

    labels = {"y": bundle.train.y[:6].to(device)} if getattr(model, "needs_labels", False) else {}
    for key, value in model.loss(x, generator=g, **labels).items():
        if value.is_floating_point():
            check(value, f"loss(x)[{key!r}]")
    model.eval()
    caps = model.capabilities
    with torch.no_grad():
        if callable(getattr(model, "sample", None)):
            check(model.sample(3, generator=g), "sample(3)")
        if protocols.ENERGY in caps:
            check(model.free_energy(x), "free_energy(x)")
            check(model.gibbs_step(x, generator=g), "gibbs_step(x)")
        if protocols.AIS in caps:
            base = model.ais_base(bundle.train.x.to(device=device, dtype=torch.float64))
            s = base.sample(3, g)
            check(s, "ais_base(x).sample(3)")
            check(model.annealed_free_energy(s, 0.5, base), "annealed_free_energy(s, 0.5)")
            inc, s2 = model.annealed_step(s, 0.0, 0.5, base, g, transition=True)
            check(inc, "annealed_step(...)[0]")
            check(s2, "annealed_step(...)[1]")
        if protocols.VARIATIONAL in caps:
            check(model.variational_free_energy(x), "variational_free_energy(x)")
        if protocols.LATENT in caps:
            z = model.proposal(x).sample((2,))
            check(model.log_joint(x, z), "log_joint(x, z)")
        if protocols.EXACT_LIKELIHOOD in caps:
            check(model.log_prob(x), "log_prob(x)")
        if protocols.INPAINT in caps:
            observed = torch.zeros(x.shape[1], dtype=torch.bool, device=device)
            observed[: x.shape[1] // 2] = True
            check(model.inpaint(x, observed, g, n_samples=2), "inpaint(x)")
        if protocols.is_classifier(model):
            check(model.predict(x), "predict(x)", torch.int64)


@pytest.mark.parametrize("name", NAMES)
def test_three_training_steps_on_the_device(name, device, tmp_path):
    """The conformance suite's training step, with train.device the device under test."""
    if device.type == "cpu":
        pytest.skip("on cpu, test_conformance.py's one-training-step test is this test")
    from genzoo.training import Trainer

    cfg, bundle, model = _build_tiny(name, device)
    out = Trainer(model, cfg, bundle, tmp_path / "run").fit()
    assert out["step"] == 3
    for key, value in model.state_dict().items():
        assert value.device.type == device.type, key
        if value.is_floating_point():
            assert torch.isfinite(value).all(), key


def test_gpu_check_runs_end_to_end_in_its_dry_mode(device, tmp_path):
    """benchmarks/gpu_check.sh with GENZOO_GPU_CHECK_DRY=1: every step on the CPU (torchrun on
    gloo) at smoke sizes, so the one GPU run has only the device left to meet."""
    needs_cpu(device, "the dry run is the CPU rehearsal of benchmarks/gpu_check.sh")
    env = {**os.environ, "GENZOO_GPU_CHECK_DRY": "1"}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads((tmp_path / "gpu_check.json").read_text())
    assert doc["dry_run"] and doc["device"] == "cpu" and doc["card"]
    assert doc["tests"]["tests"] > 0 and doc["tests"]["failures"] == doc["tests"]["errors"] == 0
    for step in ("tests", "nccl_train", "one_train", "nccl_eval", "one_eval"):
        assert doc["steps"][step]["rc"] == 0, step
    assert doc["nccl_vs_one_process"]["same"], doc["nccl_vs_one_process"]
    speed = [n for n in doc["steps"] if n.startswith("speed_")]
    assert speed and all(doc["steps"][n]["rc"] in (0, "not-run") for n in speed)
