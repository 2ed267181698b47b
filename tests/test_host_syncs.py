"""No host syncs in hot loops, checked without a GPU.

On a GPU, ``.item()``, ``float(t)``, ``bool(t)``, ``.cpu()``, ``.to("cpu")``, ``.tolist()`` and
``.numpy()`` of a device tensor wait for every queued kernel, then copy: one in the temperature
loop of AIS or in the draw loop of importance sampling stalls the device thousands of times. A
scan of the hot code for those calls, each one that remains listed with why it is not a stall
(once per shard, once per step where the step needs the figure on the host, ...):

- any such call inside a loop (``for``, ``while``, a comprehension) in the estimators
  (evaluation/ais.py, energy.py, importance.py and the shard loop they run in, shards.py) and
  in the files of the Trainer's step path;
- any such call, loop or not, in a function that itself runs once per iteration of a hot loop
  (:data:`HOT`): the Trainer's step path, an estimator's per-shard and per-chunk work.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "genzoo"
ESTIMATORS = ("evaluation/ais.py", "evaluation/energy.py", "evaluation/importance.py",
              "evaluation/shards.py")
# (file, function) run once per iteration of a hot loop: the whole body is hot.
HOT = {
    # The Trainer's step path: once per training step.
    ("training/trainer.py", "_loop"), ("training/trainer.py", "_after_step"),
    ("training/stepper.py", "step"), ("training/stepper.py", "_parts"),
    ("training/stepper.py", "_update"), ("training/stepper.py", "_single_step"),
    ("training/stepper.py", "_phased_step"), ("training/model_calls.py", "loss_figures"),
    ("training/data_parallel.py", "all_reduce_update"), ("training/data_parallel.py", "hold"),
    ("training/metrics.py", "add"),
    # The estimators: once per shard (map_shards' run calls each shard function) ...
    ("evaluation/shards.py", "run"), ("evaluation/ais.py", "shard"),
    ("evaluation/ais.py", "_anneal"), ("evaluation/importance.py", "shard"),
    ("evaluation/energy.py", "states"), ("evaluation/energy.py", "_reverse_from_chains"),
    ("evaluation/energy.py", "model_samples_for_reverse_ais"),
    # ... and once per chunk of importance draws.
    ("evaluation/importance.py", "_log_weights"),
    ("evaluation/importance.py", "draw_with_log_prob"), ("evaluation/importance.py", "draw"),
    ("evaluation/importance.py", "_draws_itself"),
    # The side-by-side shard runner and the sequence estimator's shards.
    ("evaluation/shards.py", "one"), ("evaluation/sequence.py", "chunk"),
}  # fmt: skip
# ... and once per AIS temperature: the models' annealing paths (the AnnealingPath contract).
PATHS = {
    "ops/numerics.py": ("softplus_increment",),
    "models/boltzmann/_ops.py": ("annealed_step", "_path_increment", "_path_sweep"),
    "models/boltzmann/rbm.py": ("_path_input", "_path_increment", "_path_sweep"),
    "models/boltzmann/grbm.py": ("_path_input", "_path_free_energy", "_path_sweep"),
    "models/boltzmann/ssrbm.py": ("_path_input", "_path_free_energy", "_path_sweep"),
    "models/boltzmann/conv_rbm.py": ("_path_input", "_path_increment", "_path_sweep"),
    "models/boltzmann/dbm.py": ("annealed_step",),
    "evaluation/hmc_ais.py": ("annealed_step", "_transition"),
}
HOT |= {(rel, fn) for rel, fns in PATHS.items() for fn in fns}
METHODS = {"item", "cpu", "tolist", "numpy"}
BUILTINS = {"float", "bool"}
# (file, function, call) -> why this host sync is not a stall in a hot loop.
ALLOWED = {
    ("evaluation/ais.py", "_check_betas", "float()"): "floats of a host list (the schedule, "
    "read once per estimate by one .tolist())",
    ("evaluation/importance.py", "_draws_itself", "bool()"): "a Python attribute of the "
    "proposal, not a tensor",
    ("evaluation/shards.py", "run", ".to('cpu')"): "once per shard: the shard's results are "
    "gathered on the host in float64 (documented in map_shards)",
    ("training/model_calls.py", "loss_figures", ".cpu()"): "once per step, one copy for all "
    "figures: the step needs its loss on the host to skip the backward pass of a non-finite "
    "loss and to stop a diverging run",
    ("training/model_calls.py", "loss_figures", ".tolist()"): "the same copy, on the host",
    ("training/model_calls.py", "validation_figures", "float()"): "once per validation (every "
    "train.validate_every steps), a few scalars beside a pass over the validation split",
    ("ops/numerics.py", "softplus_increment", "bool()"): "one scalar per AIS temperature: "
    "whether the step is coarse enough (|d| >= 20) to need the float64 difference, which must "
    "be chosen before the increment is formed (computing both ways costs about 10 % of a step)",
    ("models/boltzmann/conv_rbm.py", "_path_increment", "bool()"): "the same test for the "
    "convolutional RBM's block increments, one scalar per temperature",
    ("models/boltzmann/dbm.py", "mean_field", "float()"): "the mean-field loop's stopping "
    "test: the host must know when the largest change falls below mf_tol (once per iteration "
    "of inference, not of an AIS temperature)",
    ("evaluation/hmc_ais.py", "ais_base", "float()"): "the pilot before AIS: floats of a numpy "
    "grid, and the step size adapted on the host from each pilot step's acceptance (a few "
    "hundred steps once per estimate)",
    ("training/metrics.py", "log", "float()"): "once per logged row: the figures are Python "
    "floats already (the CSV row)",
    ("training/stepper.py", "_update", ".tolist()"): "a host tensor: the all-reduce's summed "
    "figures, already copied once by all_reduce_update",
    ("training/data_parallel.py", "all_reduce_update", ".cpu()"): "once per step (distributed "
    "runs): the gradient counts and the loss figures of the one all-reduce, in one copy",
    ("training/data_parallel.py", "all_reduce_update", ".tolist()"): "a host tensor: the "
    "counts from that copy",
}


def _call_name(node: ast.Call) -> str | None:
    """The host sync ``node`` is (``".cpu()"``, ``"float()"``, ``".to('cpu')"``...), or None."""
    f = node.func
    if isinstance(f, ast.Name) and f.id in BUILTINS and node.args:
        return f"{f.id}()"
    if isinstance(f, ast.Attribute):
        if f.attr in METHODS:
            return f".{f.attr}()"
        targets = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "device")]
        if f.attr == "to" and any(isinstance(a, ast.Constant) and a.value == "cpu"
                                  for a in targets):
            return ".to('cpu')"
    return None


def _parts(node: ast.AST, hot: bool) -> list[tuple[ast.AST, bool]]:
    """The children of ``node`` with whether they run once per iteration of a loop (True) or
    as hot as ``node`` itself: a loop's body and condition, a comprehension's element and
    conditions (its first iterable is evaluated once)."""
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return [(node.target, hot), (node.iter, hot), *((s, True) for s in node.body),
                *((s, hot) for s in node.orelse)]
    if isinstance(node, ast.While):
        return [(node.test, True), *((s, True) for s in node.body),
                *((s, hot) for s in node.orelse)]
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        first = node.generators[0].iter
        return [(c, hot if c is first else True) for gen in node.generators
                for c in (gen.target, gen.iter, *gen.ifs)] + [
                    (c, True) for c in ast.iter_child_nodes(node)
                    if not isinstance(c, ast.comprehension)]
    return [(c, hot) for c in ast.iter_child_nodes(node)]


def host_syncs(path: Path, hot: frozenset[str] = frozenset()) -> list[tuple[str, int, str]]:
    """(enclosing function, line, call) of each host sync in ``path`` that runs inside a loop,
    or anywhere in a function named in ``hot``."""
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, where: str, hot_here: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            where, hot_here = node.name, hot_here or node.name in hot
        elif isinstance(node, ast.Call) and hot_here and (name := _call_name(node)):
            found.append((where, node.lineno, name))
        for child, child_hot in _parts(node, hot_here):
            visit(child, where, child_hot)

    visit(ast.parse(path.read_text(), str(path)), "<module>", False)
    return sorted(found, key=lambda h: h[1])


def _scan() -> list[tuple[str, str, int, str]]:
    """(file, function, line, call) of every host sync in the hot code."""
    hits = []
    for rel in sorted({*ESTIMATORS, *(r for r, _ in HOT)}):
        hot = frozenset(fn for r, fn in HOT if r == rel)
        hits += [(rel, *h) for h in host_syncs(SRC / rel, hot)]
    return hits


def _problems() -> list[str]:
    return [f"src/genzoo/{rel}:{line} {call} in {where}()" for rel, where, line, call in _scan()
            if (rel, where, call) not in ALLOWED]


def test_no_host_sync_in_a_hot_loop_outside_the_listed_exceptions():
    problems = _problems()
    assert not problems, (
        "a host sync in a hot loop stalls a GPU at every iteration: keep the values on the "
        "device (accumulate tensors, convert once after the loop), or list the call in "
        "ALLOWED with why it is not a stall:\n" + "\n".join(problems))


def test_the_hot_functions_exist():
    """A renamed function would silently leave the scan: every HOT entry is defined."""
    for rel, fn in HOT:
        tree = ast.parse((SRC / rel).read_text())
        names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert fn in names, f"src/genzoo/{rel} has no function {fn}: update HOT"


def test_every_allowed_sync_is_still_there():
    """An exception whose call is gone is removed from ALLOWED, so the list stays true."""
    seen = {(rel, where, call) for rel, where, _, call in _scan()}
    assert set(ALLOWED) <= seen, sorted(set(ALLOWED) - seen)


def test_the_scan_sees_what_it_looks_for(tmp_path):
    code = ("def f(t, xs):\n"
            "    a = float(t)\n"  # outside a loop: fine
            "    for x in xs.tolist():\n"  # the iterable: once, fine
            "        a += x.item()\n"
            "    b = [float(x) for x in xs]\n"
            "    while a:\n"
            "        a = bool(t.to('cpu'))\n"
            "    return a, b\n"
            "def g(t):\n"
            "    return t.cpu()\n")
    (tmp_path / "m.py").write_text(code)
    assert host_syncs(tmp_path / "m.py") == [
        ("f", 4, ".item()"), ("f", 5, "float()"), ("f", 7, "bool()"), ("f", 7, ".to('cpu')")]
    assert host_syncs(tmp_path / "m.py", frozenset({"g"}))[-1] == ("g", 10, ".cpu()")
