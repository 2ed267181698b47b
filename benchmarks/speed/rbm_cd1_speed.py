"""Speed of one epoch of CD-1 for a 784-500 RBM: genzoo against its peers and the bare BLAS floor.

What is timed: one pass of ``n_batches`` mini-batches (default 500 x 100 = the 50,000 rows of
the fixed binarized MNIST train split), float32, CPU, in one process on the same data, by
the implementations the row's ``descriptions`` name (each result carries its description): genzoo's
RBM (k=1) stepped by ``torch.optim.SGD`` and genzoo's ``Trainer.fit``; scikit-learn's
``BernoulliRBM`` and learnergy's RBM (``fit`` as shipped, and its bare update); and two floors,
``bare``, only the five matrix products an epoch of CD-1 needs per batch (``v @ W``, ``h @ W.T``,
``v' @ W``, ``v.T @ h``, ``v'.T @ h'``: 5 x 2 x 100 x 784 x 500 = 392 MFLOP per batch; no
sigmoids, draws, biases or update), and ``bare+draws``, which adds the two uniform draws an
exact CD-1 step cannot skip (torch fills them serially on CPU, so with more BLAS threads they
take a growing share of an epoch).

Repetitions are interleaved (the order rotates each round) so machine noise hits every
implementation alike; each implementation runs a short untimed warm-up first. The medians
are reported, with ratios ``genzoo / other`` (below 1 means genzoo is faster).

Run ``python benchmarks/run.py rbm_cd1_speed`` (writes ``results/rbm_cd1_speed.json``) or
add ``--smoke`` for a seconds-long check written to a temporary directory. learnergy is
optional: see benchmarks/README.md for the safe install."""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
import time
from functools import partial

import common
import torch

from genzoo.data import DataConfig
from genzoo.models.boltzmann.rbm import RBM, RBMConfig
from genzoo.training.timing import timed_fit
from genzoo.utils import timing
from genzoo.utils.provenance import busy_notes, load_average, package_version

N_VISIBLE = 784
PEERS = ("sklearn", "learnergy-fit", "learnergy-step")
ACCEPT_FLOOR_RATIO = 1.5  # genzoo / bare+draws


def _genzoo(x: torch.Tensor, args: argparse.Namespace):
    torch.manual_seed(args.seed)
    model = RBM(RBMConfig(n_visible=N_VISIBLE, n_hidden=args.n_hidden, k=1, persistent=False))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    batches = list(torch.split(x, args.batch_size))

    def epoch(n: int | None = None) -> None:
        for v in batches[:n]:
            out = model.loss(v, generator)
            optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            optimizer.step()

    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    return epoch, {"dtype": dtype, "version": package_version("genzoo")}


def _genzoo_trainer(x: torch.Tensor, args: argparse.Namespace):
    """The real Trainer.fit for one epoch, timed from the start of the first step to the end
    of the last, so setup, checkpoints and sample grids are excluded."""
    data_cfg = DataConfig(name="binarized-mnist", n_train=len(x), n_eval=1)
    try:
        bundle = common.offline_data(data_cfg)
    except Exception as exc:  # noqa: BLE001
        raise timing.Unavailable(f"the Trainer needs the real data bundle: {exc}") from None
    model_cfg = RBMConfig(n_visible=N_VISIBLE, n_hidden=args.n_hidden, k=1, persistent=False)

    def epoch(n: int | None = None) -> float:
        torch.manual_seed(args.seed)
        with tempfile.TemporaryDirectory(prefix="genzoo-bench-trainer-") as run_dir:
            return timed_fit(
                RBM(model_cfg), "rbm", data_cfg, bundle, run_dir, epochs=1, max_steps=n,
                batch_size=args.batch_size, optimizer="sgd", lr=args.lr, momentum=0.0,
                initial_momentum=0.0, seed=args.seed, log_every=10**9)[0]

    return epoch, {"dtype": "float32", "version": package_version("genzoo")}


def _sklearn(x: torch.Tensor, args: argparse.Namespace):
    x_np = x.numpy()
    try:
        from sklearn.neural_network import BernoulliRBM
    except ImportError as exc:
        raise timing.Unavailable(f"scikit-learn not importable: {exc}") from None
    rbm = BernoulliRBM(n_components=args.n_hidden, learning_rate=args.lr,
                       batch_size=args.batch_size, n_iter=1, random_state=args.seed, verbose=0)
    info = {"version": package_version("sklearn")}

    def epoch(n: int | None = None) -> None:
        rows = x_np if n is None else x_np[: n * args.batch_size]
        rbm.fit(rows)
        info["dtype"] = str(rbm.components_.dtype)

    return epoch, info


def _learnergy(x: torch.Tensor, args: argparse.Namespace, fit: bool):
    batch_size = args.batch_size
    try:
        from learnergy.models.bernoulli import RBM as LRBM
    except ImportError as exc:
        raise timing.Unavailable(f"learnergy not installed ({exc}); see benchmarks/README.md "
                                 "for the install that keeps the CPU torch") from None
    # learnergy logs every epoch at INFO; the benchmark's own output is the JSON.
    for name in ["learnergy", *logging.root.manager.loggerDict]:
        if name.startswith("learnergy"):
            logging.getLogger(name).setLevel(logging.WARNING)
    torch.manual_seed(args.seed)
    model = LRBM(n_visible=N_VISIBLE, n_hidden=args.n_hidden, steps=1, learning_rate=args.lr,
                 momentum=0.0, decay=0.0, temperature=1.0, use_gpu=False)
    info = {"dtype": str(model.W.dtype).replace("torch.", ""), "version": package_version("learnergy")}
    if fit:
        labels = torch.zeros(len(x))

        def epoch(n: int | None = None) -> None:
            rows = x if n is None else x[: n * batch_size]
            model.fit(torch.utils.data.TensorDataset(rows, labels[: len(rows)]),
                      batch_size=batch_size, epochs=1)

        return epoch, info

    batches = list(torch.split(x, batch_size))

    def epoch(n: int | None = None) -> None:
        for v in batches[:n]:
            *_, v_model = model.gibbs_sampling(v)
            v_model = v_model.detach()
            cost = torch.mean(model.energy(v)) - torch.mean(model.energy(v_model))
            model.optimizer.zero_grad()
            cost.backward()
            model.optimizer.step()

    return epoch, info


def _bare(x: torch.Tensor, args: argparse.Namespace, draws: bool = False):
    """The five products; with ``draws`` also the two uniform draws that any exact CD-1 step
    needs (h0 ~ p(h | v): B x H, v1 ~ p(v | h0): B x D) from an explicit torch.Generator,
    into preallocated buffers. torch's CPU generator fills them serially whatever the thread
    count, so this floor shows how much of an epoch no amount of BLAS threads can shorten."""
    n_hidden, batch_size = args.n_hidden, args.batch_size
    g = torch.Generator().manual_seed(args.seed)
    W = torch.randn(N_VISIBLE, n_hidden, generator=g) * 0.01
    h = torch.bernoulli(torch.full((batch_size, n_hidden), 0.5), generator=g)
    v_neg = torch.bernoulli(torch.full((batch_size, N_VISIBLE), 0.5), generator=g)
    h_neg = torch.bernoulli(torch.full((batch_size, n_hidden), 0.5), generator=g)
    # the products' outputs and the uniform draws: (B, H), (B, D) and (D, H) buffers
    a_pos, a_neg, u_h = (torch.empty(batch_size, n_hidden) for _ in range(3))
    v_rec, u_v = (torch.empty(batch_size, N_VISIBLE) for _ in range(2))
    g_pos, g_neg = (torch.empty(N_VISIBLE, n_hidden) for _ in range(2))
    batches = [b for b in torch.split(x, batch_size) if len(b) == batch_size]

    def epoch(n: int | None = None) -> None:
        for v in batches[:n]:
            if draws:
                u_h.uniform_(generator=g)
                u_v.uniform_(generator=g)
            torch.mm(v, W, out=a_pos)
            torch.mm(h, W.t(), out=v_rec)
            torch.mm(v_neg, W, out=a_neg)
            torch.mm(v.t(), h, out=g_pos)
            torch.mm(v_neg.t(), h_neg, out=g_neg)

    return epoch, {"dtype": "float32", "version": torch.__version__}


# Each implementation: (x, args) -> (epoch(n_batches=None), facts for its timings entry).
FACTORIES = {
    "genzoo": _genzoo, "genzoo-trainer": _genzoo_trainer, "sklearn": _sklearn,
    "learnergy-fit": partial(_learnergy, fit=True),
    "learnergy-step": partial(_learnergy, fit=False),
    "bare": _bare, "bare+draws": partial(_bare, draws=True)}


def add_arguments(p: argparse.ArgumentParser, row: dict) -> None:
    # --threads: for torch and numpy's BLAS alike (default: the libraries' own); 1 is
    # steadier on a machine shared with other work
    p.add_argument("--impls", default=",".join(FACTORIES), type=_impls,
                   help=f"comma-separated subset of {', '.join(FACTORIES)}")
    p.add_argument("--profile", action="store_true",
                   help="also store torch.profiler's top operators over 50 genzoo batches")


def _impls(text: str) -> list[str]:
    impls = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(impls) - set(FACTORIES))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown implementation(s) {unknown}; choose from {list(FACTORIES)}")
    return impls


def run(row: dict, args: argparse.Namespace, dirs: common.RunDirs) -> list[dict]:
    timing.limit_threads(args.threads)
    n_rows = args.n_batches * args.batch_size
    load_at_start = load_average()
    x, data = common.binarized_mnist_rows(n_rows, args.smoke, args.seed)

    def warmed_up(name: str):
        epoch, info = FACTORIES[name](x, args)
        epoch(min(args.warmup_batches, args.n_batches))  # untimed warm-up
        return epoch, info

    setup_start = time.perf_counter()
    timings, epochs = timing.build_candidates({n: partial(warmed_up, n) for n in args.impls},
                                              row["descriptions"])
    setup_s = time.perf_counter() - setup_start

    timed_start = time.perf_counter()
    for name, t in timing.interleaved_medians(epochs, args.repetitions).items():
        timings[name].update(t)
    timed_s = time.perf_counter() - timed_start

    useful_gflop = 5 * 2 * args.batch_size * N_VISIBLE * args.n_hidden * args.n_batches / 1e9
    for entry in timings.values():
        if entry["status"] == "ok":
            entry["per_batch_ms"] = 1e3 * entry["median_s"] / args.n_batches
            entry["gflops_5_products"] = useful_gflop / entry["median_s"]
    profile = None
    if args.profile and timings.get("genzoo", {}).get("status") == "ok":
        epoch, _ = _genzoo(x, args)
        epoch(2)  # warm-up
        profile = timing.top_operators(epoch, min(50, args.n_batches))
        for op in profile:
            print(f"  profile {op['op']:<40} {op['self_ms_per_batch']:7.3f} ms/batch "
                  f"{100 * op['self_share']:5.1f}%")
    # One result per thread setting, so both stand in RESULTS.md side by side: the BLAS
    # products scale with threads while the random draws do not, so the ratios differ.
    title = "CD-1 epoch time, RBM 784-500, batch 100, float32, CPU, " + (
        f"{args.threads} thread(s)" if args.threads else "default threads")
    return [common.speed_result(
        row, args, "rbm_cd1_speed" + (f"_threads{args.threads}" if args.threads else ""), title,
        timings, _acceptance(timings, timing.median_ratios(timings)),
        busy_notes("at the start", "expect noise; rerun on a quiet machine before quoting "
                   "these numbers.", load_at_start),
        row_name="rbm_cd1_speed_threads1" if args.threads == 1 else "rbm_cd1_speed", data=data,
        config={
            "n_visible": N_VISIBLE,
            "dtype": "float32",
            "threads": args.threads if args.threads is not None else "library defaults",
            "torch_threads": torch.get_num_threads(),
            "useful_gflop_per_epoch": useful_gflop},
        wall_s={"setup_and_warmup": setup_s, "timed_loop": timed_s},
        **({"genzoo_profile": profile} if profile is not None else {}))]


def _acceptance(timings: dict, ratios: dict) -> dict:
    # The floor of an exact CD-1 step is the five products and the two draws: the randomness
    # is part of the algorithm (the decision of the speed issue); genzoo / bare is informative.
    criterion = ("genzoo has the lowest median epoch time of all implementations that ran (the "
                 f"bare floors excepted) and genzoo / bare+draws <= {ACCEPT_FLOOR_RATIO}")
    gz = timings.get("genzoo", {})
    if gz.get("status") != "ok":
        return common.acceptance(criterion, ["genzoo did not run"])
    faster = [n for n in PEERS if timings.get(n, {}).get("median_s", math.inf) < gz["median_s"]]
    floor_ratio = ratios.get("genzoo / bare+draws")
    why = ["faster than genzoo: " + ", ".join(faster)] if faster else []
    if floor_ratio is None:
        why.append("bare+draws floor not measured")
    elif floor_ratio > ACCEPT_FLOOR_RATIO:
        why.append(f"genzoo / bare+draws = {floor_ratio:.2f} > {ACCEPT_FLOOR_RATIO}")
    missing = [n for n in PEERS if timings.get(n, {}).get("status") != "ok"]
    bare = ({"genzoo_over_bare": ratios["genzoo / bare"]} if "genzoo / bare" in ratios else {})
    return common.acceptance(criterion, why, peers_not_measured=missing, **bare)
