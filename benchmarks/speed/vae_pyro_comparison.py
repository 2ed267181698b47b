"""genzoo's VAE side by side with Pyro's VAE example: time per epoch and final test NLL, both
models evaluated by genzoo's importance sampler.

The architecture and recipe are those of Pyro's VAE example (``examples/vae/vae.py`` in the
Pyro repository): encoder 784-400 (softplus) -> (loc, scale) of q(z|x) with 50 latents, decoder
50-400 (softplus) -> 784 Bernoulli probabilities, Trace_ELBO (one draw of the whole bound per
example: Kingma & Welling's SGVB-A estimator), Adam with lr 1e-3, minibatches of 256. Both
libraries train that model here on the same data, the fixed binarization of MNIST (Larochelle
& Murray 2011; 50,000 train / 10,000 test), for the same number of epochs, in one process:

genzoo's ``Trainer`` on its ``VAE(hidden=(400,), n_latent=50, activation=softplus,
decoder=bernoulli, estimator=sgvb_a, n_mc=1)``, and Pyro's ``SVI(model, guide, Adam,
Trace_ELBO())`` stepped per minibatch on the example's networks, written as plain torch modules
here (the row's ``descriptions`` say what each timing covers). Each epoch is timed from its
first step to its last.

Epochs are interleaved (one of each library a round, the order alternating; genzoo continues
its run with ``fit(resume=True)``) so that load from other work hits both alike; the medians over
epochs are compared as ``genzoo / pyro`` (below 1: genzoo is faster). After training, the test
NLL of both models is estimated by ``genzoo.evaluation.importance.importance_log_px``
(float64, the same k and the same test examples): the Pyro networks are wrapped in a small
module that honours genzoo's latent-variable contract (``log_joint``, ``proposal``), so the
number is Pyro's model exactly as Pyro defines it.

Pyro is optional (see benchmarks/README.md for an install that keeps the CPU torch); without
it the script still measures genzoo and reports Pyro as missing, with the reason.

    python benchmarks/run.py vae_pyro_comparison           # the row's --full: 100 epochs, k=5000
    python benchmarks/run.py vae_pyro_comparison --smoke   # seconds; temp dir only
    python benchmarks/run.py vae_pyro_comparison -- --epochs 5 --is-samples 1000 --n-test 1000

genzoo keeps its own default initialisation (weights N(0, 0.01^2), Kingma & Welling's), which
with softplus units leaves the latents unused for the first epoch; ``--genzoo-init-std 0.05``
brings its scale near torch's default init that Pyro's example uses.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from pathlib import Path

import common
import torch
from torch import distributions as D
from torch import nn

from genzoo.core.errors import GenzooError
from genzoo.core.protocols import LATENT
from genzoo.data import DataConfig
from genzoo.evaluation.importance import importance_log_px
from genzoo.evaluation.stats import mean_stderr
from genzoo.models.directed.vae import VAE, VAEConfig
from genzoo.training.timing import timed_fit
from genzoo.utils import denormals
from genzoo.utils.provenance import busy_notes, package_version
from genzoo.utils.timing import Unavailable, build_candidates, interleaved_medians, median_ratios

RUN_NAME = "vae_pyro_comparison_e{epochs}"
DATA = "binarized-mnist"
N_VISIBLE, BATCH, LR = 784, 256, 1e-3
# Pyro's example squeezes its Bernoulli probabilities into [1e-7, 1 - 1e-7].
FUDGE = 1e-7
ACCEPT_NLL_NATS = 1.0
INSTALL_HINT = ("install it without touching torch: pip install --no-deps pyro-ppl==1.9.2 "
                "pyro-api==0.1.2 opt_einsum==3.4.0 (see benchmarks/README.md)")


# ------------------------------------------------------------------------- the Pyro side
def _layers(sizes: tuple[int, ...], act: type[nn.Module]) -> nn.Sequential:
    return nn.Sequential(*[m for a, b in itertools.pairwise(sizes) for m in (nn.Linear(a, b), act())])


class PyroEncoder(nn.Module):
    """x (B, D) -> (loc, scale) of q(z|x), each (B, J): ``hidden`` layers of ``act`` (the
    example: one of softplus); the scale is exp of a linear output, as in Pyro's example."""

    def __init__(self, d: int, hidden: tuple[int, ...], j: int, act=nn.Softplus) -> None:
        super().__init__()
        self.body = _layers((d, *hidden), act)
        self.loc = nn.Linear(hidden[-1], j)
        self.log_scale = nn.Linear(hidden[-1], j)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.loc(h), torch.exp(self.log_scale(h))


class PyroDecoder(nn.Module):
    """z (..., J) -> Bernoulli probabilities (..., D) in [FUDGE, 1 - FUDGE] (layers mirrored)."""

    def __init__(self, d: int, hidden: tuple[int, ...], j: int, act=nn.Softplus) -> None:
        super().__init__()
        self.body = _layers((j, *hidden[::-1]), act)
        self.out = nn.Linear(hidden[0], d)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(self.out(self.body(z)))
        return (p + FUDGE) * (1 - 2 * FUDGE)


class PyroVAELatent(nn.Module):
    """The trained Pyro networks under genzoo's latent-variable contract (``LATENT``):
    ``log_joint(x, z)`` = log N(z; 0, I) + sum_d log Bernoulli(x_d; p_d(z)) in nats, (B,) for
    x (B, D), z (B, J); ``proposal(x)`` = the guide's q(z|x) = Independent(Normal(loc, scale))."""

    capabilities = frozenset({LATENT})

    def __init__(self, encoder: PyroEncoder, decoder: PyroDecoder) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        p = self.decoder(z)
        log_px_z = D.Bernoulli(probs=p).log_prob(x.to(p)).sum(-1)
        return D.Normal(0.0, 1.0).log_prob(z).sum(-1) + log_px_z

    def proposal(self, x: torch.Tensor) -> D.Distribution:
        ref = self.decoder.out.weight
        loc, scale = self.encoder(x.to(ref))
        return D.Independent(D.Normal(loc, scale), 1)


def pyro_trainer(x_train: torch.Tensor, args: argparse.Namespace, hidden=None, act=nn.Softplus,
                 batch: int = BATCH, k: int = 1):
    """((run one epoch -> seconds, the LATENT wrapper), info) for Pyro's SVI on Pyro's example
    model (``hidden``, default ``(args.hidden,)``, layers of ``act``; ``args.latent`` latents),
    minibatches of ``batch``, Trace_ELBO (k = 1) or RenyiELBO(alpha = 0), the IWAE bound on k
    vectorised particles. Raises Unavailable when Pyro cannot be imported."""
    try:
        import pyro
        import pyro.distributions as pdist
        from pyro.infer import SVI, RenyiELBO, Trace_ELBO
        from pyro.optim import Adam
    except Exception as exc:  # noqa: BLE001 - any import failure means "cannot run here"
        raise Unavailable(f"pyro-ppl not importable ({type(exc).__name__}: {exc}); "
                          f"{INSTALL_HINT}") from None
    pyro.clear_param_store()
    # Pyro draws from torch's global generator; seed it for a repeatable run.
    torch.manual_seed(args.seed)
    hidden = hidden or (args.hidden,)
    encoder = PyroEncoder(x_train.shape[1], hidden, args.latent, act)
    decoder = PyroDecoder(x_train.shape[1], hidden, args.latent, act)

    def model(x: torch.Tensor) -> None:
        pyro.module("decoder", decoder)
        with pyro.plate("data", x.shape[0]):
            zeros = x.new_zeros((x.shape[0], args.latent))
            z = pyro.sample("latent", pdist.Normal(zeros, 1.0 + zeros).to_event(1))
            pyro.sample("obs", pdist.Bernoulli(probs=decoder(z)).to_event(1), obs=x)

    def guide(x: torch.Tensor) -> None:
        pyro.module("encoder", encoder)
        with pyro.plate("data", x.shape[0]):
            loc, scale = encoder(x)
            pyro.sample("latent", pdist.Normal(loc, scale).to_event(1))

    loss = Trace_ELBO() if k == 1 else RenyiELBO(0.0, num_particles=k, max_plate_nesting=1,
                                                  vectorize_particles=True)
    svi = SVI(model, guide, Adam({"lr": LR}), loss=loss)
    state = {"epoch": 0, "loss": math.nan}
    n = len(x_train)

    def epoch() -> float:
        g = torch.Generator().manual_seed(args.seed * 100_003 + state["epoch"])
        order = torch.randperm(n, generator=g)
        total = 0.0
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            total += svi.step(x_train[order[i : i + batch]])
        elapsed = time.perf_counter() - t0
        state["epoch"] += 1
        state["loss"] = total / n
        return elapsed

    info = {"version": getattr(pyro, "__version__", "unknown"), "dtype": "float32",
            "train_loss_last_epoch": state}
    return (epoch, PyroVAELatent(encoder, decoder)), info


# ------------------------------------------------------------------------ the genzoo side
def genzoo_trainer(bundle, data_cfg, args: argparse.Namespace, run_dir: Path):
    """((run one more epoch -> seconds, the VAE), info): genzoo's Trainer, continued one epoch
    at a time with ``fit(resume=True)``; each epoch is timed by a callback from the start of
    its first step to the end of its last. ``args.genzoo_init_std``: model.init_std (None:
    genzoo's default)."""
    std = {} if args.genzoo_init_std is None else {"init_std": args.genzoo_init_std}
    model_cfg = VAEConfig(n_visible=N_VISIBLE, hidden=(args.hidden,), n_latent=args.latent,
                          activation="softplus", decoder="bernoulli", estimator="sgvb_a", n_mc=1,
                          **std)
    model = VAE(model_cfg, generator=torch.Generator().manual_seed(args.seed))
    state = {"epoch": 0}

    def epoch() -> float:
        state["epoch"] += 1
        seconds, metrics = timed_fit(
            model, "vae", data_cfg, bundle, run_dir, resume=state["epoch"] > 1,
            epochs=state["epoch"], batch_size=BATCH, optimizer="adam", lr=LR,
            lr_schedule="constant", momentum=0.9, seed=args.seed, log_every=50,
            validate_every=10**9)
        state["loss"] = metrics.get("loss")
        return seconds

    return (epoch, model), {"version": package_version("genzoo"), "dtype": "float32",
                            "train_loss_last_epoch": state, "init_std": model_cfg.init_std}


def add_arguments(p: argparse.ArgumentParser, row: dict) -> None:
    p.add_argument("--genzoo-init-std", type=float, default=None,
                   help="genzoo's model.init_std (default: genzoo's own, 0.01)")


def run(row: dict, args: argparse.Namespace, dirs: common.RunDirs) -> list[dict]:
    data_cfg = DataConfig(name=DATA, n_train=args.n_train, n_eval=args.n_test)
    try:
        bundle = common.offline_data(data_cfg)
    except (GenzooError, OSError) as exc:
        raise SystemExit(f"vae_pyro_comparison: binarized MNIST not available ({exc}); set "
                         "GENZOO_DATA to the folder holding binarized_mnist/") from None
    x_train = bundle.train.x.float().contiguous()
    x_test = bundle.test.x[: args.n_test] if args.n_test else bundle.test.x
    timings, built = build_candidates({
        "genzoo": lambda: genzoo_trainer(bundle, data_cfg, args, dirs.run / "genzoo"),
        "pyro": lambda: pyro_trainer(x_train, args),
    }, row["descriptions"], missing="missing")

    t_train = time.perf_counter()
    epochs = {name: epoch for name, (epoch, _) in built.items()}
    for name, t in interleaved_medians(epochs, args.epochs, progress=True).items():
        timings[name].update(t)
    if timings["genzoo"]["status"] != "ok":
        raise SystemExit(f"vae_pyro_comparison: genzoo failed: {timings['genzoo']['reason']}")
    train_s = time.perf_counter() - t_train

    n_batches = math.ceil(len(x_train) / BATCH)
    per_example = {}
    t_eval = time.perf_counter()
    for name, (_, model) in built.items():
        entry = timings[name]
        loss = entry.pop("train_loss_last_epoch").get("loss")
        if entry["status"] != "ok":
            continue
        t0 = time.perf_counter()  # genzoo's importance-sampled NLL, float64, k draws an example
        est = importance_log_px(model, x_test, args.is_samples,
                                torch.Generator().manual_seed(args.seed))
        rep, per_example[name] = est.report(), est.log_px
        entry.update(per_batch_ms=1e3 * entry["median_s"] / n_batches, train_loss_last_epoch=loss,
                     test_nll_nats=rep["nll_nats"], test_nll_stderr=rep["stderr"],
                     test_elbo_nats=rep["elbo_nats"], is_ess=rep["is_ess"],
                     stderr_mc=rep["stderr_mc"], evaluate_s=time.perf_counter() - t0)
        print(f"{name}: median {entry['median_s']:.2f} s/epoch, test NLL "
              f"{entry['test_nll_nats']:.2f} +/- {entry['test_nll_stderr']:.2f} nats "
              f"(ELBO {entry['test_elbo_nats']:.2f})", flush=True)
    eval_s = time.perf_counter() - t_eval

    ratios, extra = median_ratios(timings), {}
    if ratios:
        diff = -(per_example["genzoo"] - per_example["pyro"])  # NLL genzoo - NLL pyro
        mean, stderr = mean_stderr(diff)
        extra.update(nll_difference_genzoo_minus_pyro=mean, nll_difference_stderr_paired=stderr)
    acceptance = _acceptance(timings, ratios, extra)
    return [_result(row, args, bundle, x_test, timings, extra, acceptance,
                    {"train_interleaved": train_s, "evaluate": eval_s})]


def _acceptance(timings: dict, ratios: dict, extra: dict) -> dict:
    criterion = ("both ran; genzoo's median time per epoch <= Pyro's (genzoo / pyro <= 1) and "
                 f"genzoo's test NLL <= Pyro's + {ACCEPT_NLL_NATS} nat")
    if timings["pyro"].get("status") != "ok":
        why = f"Pyro not measured ({timings['pyro'].get('reason', '')})"
        return common.acceptance(criterion, [why], peers_not_measured=["pyro"])
    why = []
    if ratios["genzoo / pyro"] > 1.0:
        why.append(f"genzoo / pyro = {ratios['genzoo / pyro']:.2f} > 1")
    d = extra["nll_difference_genzoo_minus_pyro"]
    if d > ACCEPT_NLL_NATS:
        why.append(f"genzoo's NLL is {d:.2f} nats above Pyro's")
    return common.acceptance(criterion, why, peers_not_measured=[])


def _result(row, args, bundle, x_test, timings, extra, acceptance, wall) -> dict:
    def nll(name: str) -> str:
        t = timings[name]
        if "test_nll_nats" not in t:
            return f"{name}: not measured ({t.get('reason', t.get('status'))})"
        return (f"{name}: test NLL {t['test_nll_nats']:.2f} +/- {t['test_nll_stderr']:.2f} "
                f"nats (ELBO {t['test_elbo_nats']:.2f}), median {t['median_s']:.2f} s/epoch")

    budget = not args.smoke and args.epochs < row["presets"]["full"]["epochs"]
    notes = [
        *busy_notes("at the end", "the ratio is more reliable than either time, since epochs "
                    "were interleaved."),
        *([(f"Budget run: {args.epochs} epochs (Pyro's example runs 101), k = {args.is_samples}"
            f" on {len(x_test)} test images; --full for 100 epochs and k = 5000 on all 10,000.")]
          if budget else []),
        (f"Test NLL by genzoo's importance sampler, k = {args.is_samples}, float64, on the "
         f"first {len(x_test)} test images of the fixed binarization: " + "; ".join(
             nll(n) for n in ("genzoo", "pyro"))
         + (f"; paired difference genzoo - pyro {extra['nll_difference_genzoo_minus_pyro']:+.2f}"
            f" +/- {extra['nll_difference_stderr_paired']:.2f} nats" if extra else "") + "."),
        row["subnormals"]["flushed" if denormals.wanted() else "ieee"],
    ]  # then the row's: what differs between the two sides, how they are timed
    title = (f"VAE {N_VISIBLE}-{args.hidden}-{args.latent}: genzoo vs Pyro's VAE example "
             "(time per epoch, test NLL by genzoo's evaluator)")
    return common.speed_result(
        row, args, "vae_pyro_comparison", title, timings, acceptance, notes,
        data={"name": DATA, "binarization": "fixed (Larochelle & Murray 2011 file)",
              "split": "train (timing), test (NLL)", "n_examples": len(bundle.train.x),
              "n_test": len(x_test)},
        config={
            "setting": (f"VAE {N_VISIBLE}-{args.hidden}-{args.latent}, Trace_ELBO / SGVB-A, "
                        f"batch {BATCH}, {args.epochs} epochs each, interleaved (notes)"),
            "n_visible": N_VISIBLE, "n_test": len(x_test), "batch_size": BATCH, "lr": LR,
            "torch_threads": torch.get_num_threads(), "dtype": "float32"},
        extra=extra, wall_s=wall)
