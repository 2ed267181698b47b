"""``genzoo inpaint`` on a Hopfield run: recall of the stored patterns from partial or noisy
cues, by the binary network the run trained or by the continuous or the modern network holding
the same memory.

Storage is training: ``genzoo train hopfield`` stores the patterns of its training split in W
(the module docstring of :mod:`genzoo.models.hopfield.hopfield`). The cue is a stored pattern
xi in {-1, +1}^N whose pixels named by ``--mask`` are set to random +/-1 states, so a hidden
half is a partial cue and ``random:P`` a noisy one. Three networks recall from it:

- ``binary`` (Hopfield 1982): the run's network, its T = 0 dynamics until a fixed point
  (:meth:`~genzoo.models.hopfield.hopfield.HopfieldNetwork.recall`);
- ``continuous`` (Hopfield 1984): graded-response units V = tanh(gain u) with the run's W in
  Hebbian units (divided by the mean self-field xi^T W xi / N of the stored patterns, to
  which sgn dynamics are blind and graded ones are not), du/dt = -u + W V integrated by
  Euler steps (:class:`~genzoo.models.hopfield.continuous_hopfield.ContinuousHopfield`) from
  u = the cue; the recalled state is V;
- ``modern`` (Ramsauer et al. 2021): the stored patterns themselves as the rows of X,
  xi <- X^T softmax(beta X xi) (:func:`~genzoo.models.hopfield.modern_hopfield.retrieve`).

Reported: the overlap m = (1/N) sum_i s_i xi_i of the cue and of the recalled state s with the
pattern (1: recovered; about 0 for a random state), and the patterns recovered exactly
(sgn(s) = xi). The picture has three rows: pattern, cue, recall.
"""

from __future__ import annotations

import argparse

from genzoo.core.errors import GenzooError

NETWORKS = ("binary", "continuous", "modern")
# Continuous network: gain of V = tanh(gain u) (above 1 in Hebbian units, so that the stored
# patterns are attractors near the corners), Euler step and steps (time 20 tau).
CONTINUOUS_GAIN = 4.0
CONTINUOUS_DT = 0.1
CONTINUOUS_STEPS = 200
# Modern network: inverse temperature (patterns of N = 64 +/-1 pixels are far apart at beta 1:
# one step retrieves a single pattern) and update steps.
MODERN_BETA = 1.0
MODERN_STEPS = 3
BINARY_MAX_SWEEPS = 100


def is_hopfield(model) -> bool:
    """A binary Hopfield network (the class whose storage and recall this module uses)."""
    from genzoo.models.hopfield.hopfield import HopfieldNetwork

    return isinstance(model, HopfieldNetwork)


def _recalled(model, network: str, cue, stored, generator):
    """The recalled states (B, N) in [-1, 1] from cues (B, N) in {-1, +1}; ``stored`` (P, N)
    in {-1, +1} are the stored patterns."""
    import torch

    if network == "binary":
        return model.recall(cue, max_sweeps=BINARY_MAX_SWEEPS, generator=generator)
    if network == "modern":
        from genzoo.models.hopfield.modern_hopfield import retrieve

        return retrieve(cue, stored, beta=MODERN_BETA, n_steps=MODERN_STEPS)
    from genzoo.models.hopfield.continuous_hopfield import ContinuousHopfield

    W = model.W.detach()
    self_field = float(((stored @ W) * stored).sum(-1).mean()) / stored.shape[1]
    if not self_field > 0:
        raise GenzooError(
            "the run's memory is empty or holds no stored pattern as a low-energy state "
            f"(mean self-field {self_field:.3g}); train the hopfield run longer, with "
            "train.optimizer=sgd"
        )
    net = ContinuousHopfield(W / self_field, gain=CONTINUOUS_GAIN)
    with torch.no_grad():
        u = net.run(cue, n_steps=CONTINUOUS_STEPS, dt=CONTINUOUS_DT)[-1]
        return net.output(u)


def recall(model, cfg, args: argparse.Namespace, hidden_pixels) -> int:
    """``genzoo inpaint`` on a Hopfield run (module docstring); ``hidden_pixels(spec,
    image_shape, n, generator)`` is inpaint's reading of ``--mask`` (True where hidden)."""
    import torch

    from genzoo.data import image_shape_of, load_data
    from genzoo.evaluation import progress
    from genzoo.utils.images import save_image_grid

    network = args.network or "binary"
    split = args.split or "train"
    bundle = load_data(cfg.data)
    # Patterns are binary; grey levels (a run with dynamic binarization) are thresholded.
    stored = 2.0 * (bundle.train.x >= 0.5).to(model.W.dtype) - 1.0
    x = bundle.split(split).x[: args.n]
    xi = (2.0 * (x >= 0.5).to(stored.dtype) - 1.0).to(args.device)
    stored = stored.to(args.device)
    image_shape = image_shape_of(cfg.data)
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    hidden = hidden_pixels(args.mask, image_shape, len(xi), generator).to(args.device)
    noise = torch.rand(xi.shape, generator=generator, device=args.device, dtype=xi.dtype)
    cue = torch.where(hidden, torch.where(noise < 0.5, 1.0, -1.0).to(xi), xi)
    with torch.no_grad(), progress.on_stderr(not args.quiet), progress.Stage(
            f"recalling with the {network} network of {cfg.model_name}", len(xi),
            "patterns") as st:
        s = _recalled(model, network, cue, stored, generator)
        st.advance(len(xi))
    n = xi.shape[1]
    overlap = (s * xi).sum(-1) / n  # m = (1/N) sum_i s_i xi_i, (B,)
    cue_overlap = (cue * xi).sum(-1) / n
    recovered = int((torch.sign(s) == xi).all(-1).sum())
    grid = torch.cat([xi, cue, s]).add(1).div(2).float().cpu().clamp(0, 1)
    save_image_grid(grid, image_shape, args.out, nrow=len(xi))
    stored_note = "" if split == "train" else " (not stored: the run stored its train split)"
    print(f"recalled {len(xi)} {split} patterns{stored_note} from cues with {args.mask} "
          f"random, by the {network} network: mean overlap {float(overlap.mean()):.3f} "
          f"(cue {float(cue_overlap.mean()):.3f}, a random state about 0), {recovered} of "
          f"{len(xi)} recovered exactly; wrote rows pattern / cue / recall to {args.out}")
    return 0
