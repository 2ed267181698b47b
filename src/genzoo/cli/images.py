"""Commands that write pictures of a trained run: sample, inpaint, chain, filters.

A command picks what it can do with a model from the capabilities the model declares
(:mod:`genzoo.core.protocols`), never from its name: ``sample`` needs a sampler (every model
but a ``CLASSIFIER``; ``--label`` a :class:`~genzoo.core.protocols.LabelConditionalSampler`),
``inpaint`` the ``INPAINT`` contract (:class:`~genzoo.core.protocols.Inpainter`) or a
Hopfield network's recall (:mod:`.recall`), ``chain`` a Markov-chain sampler
(:class:`~genzoo.models.markov.base.MarkovChainModel`), an ``ENERGY`` model's Gibbs step or a
deep Boltzmann machine's block Gibbs sweep over its layers. A refusal names what the model
lacks.

Before any work each command checks its ``--device``, its ``--out`` file
(:func:`genzoo.utils.io.check_output_path`) and its counts, and refuses a count whose tensors
and picture would not fit in memory (:func:`genzoo.utils.memory.check_memory`).
"""

from __future__ import annotations

import argparse
import math

from genzoo.core.errors import GenzooError

PNG = (".png",)
GRID_SCALE = 2  # pixels per image pixel in sample and chain pictures (save_image_grid's default)


def _prepare(args: argparse.Namespace, suffixes: tuple[str, ...], counts: dict[str, str]):
    """Check the counts, ``--device`` and ``--out`` before any work. ``counts`` maps each count
    option to what it counts ({"-n": "samples"}); each must be positive. ``args.device``
    becomes a torch.device and ``args.out`` a Path."""
    from genzoo.utils.devices import resolve_device
    from genzoo.utils.io import check_output_path

    for flag, what in counts.items():
        value = getattr(args, flag.lstrip("-"))
        if value <= 0:
            raise GenzooError(f"{flag} {value}: the number of {what} must be positive")
    if hasattr(args, "device"):
        args.device = resolve_device(args.device)
    args.out = check_output_path(args.out, suffixes, force=args.force)


def _picture_bytes(n_images: int, n_pixels: int, scale: int = GRID_SCALE) -> int:
    """Bytes that drawing ``n_images`` images of ``n_pixels`` into one picture holds at once
    (genzoo.utils.images.tile_images): float64 copies of the images before and after scaling
    (8 + 8 scale + 8 scale^2 bytes a pixel), the float32 grid and its uint8 pixels and PNG."""
    return n_images * n_pixels * (16 + 8 * scale + 14 * scale * scale)


def _check_fits(need: int, what: str, fix: str) -> None:
    from genzoo.utils.memory import check_memory

    check_memory(need, what, fix)


def _shown(args: argparse.Namespace):
    """Progress on stderr unless ``--quiet`` (:func:`genzoo.evaluation.progress.on_stderr`)."""
    from genzoo.evaluation import progress

    return progress.on_stderr(not args.quiet)


def _load_run(args: argparse.Namespace, what: str, suffixes: tuple[str, ...] = PNG):
    """(model, run config) of ``args.run_dir`` on ``args.device``, after the checks of
    :func:`_prepare` (``-n``, the number of ``what``, must be positive)."""
    from genzoo.training.checkpoint import load_model

    _prepare(args, suffixes, {"-n": what})
    return load_model(args.run_dir, device=args.device)


def _cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from genzoo.core.protocols import CLASSIFIER, has
    from genzoo.data import image_shape_of
    from genzoo.evaluation import progress
    from genzoo.utils.images import save_image_grid

    model, cfg = _load_run(args, "samples")
    if has(model, CLASSIFIER):
        raise GenzooError(
            f"{args.run_dir} holds a {cfg.model_name!r} run, a classifier with no samples; "
            f"`genzoo evaluate {args.run_dir} --task classify` reports its test error"
        )
    labels = {} if args.label is None else {"y": _labels(model, cfg.model_name, args)}
    image_shape = image_shape_of(cfg.data)
    d = image_shape[0] * image_shape[1]
    itemsize = next(model.parameters()).element_size()
    # The samples in the model's dtype with its chain state (about four copies), then the picture.
    _check_fits(args.n * d * 4 * itemsize + _picture_bytes(args.n, d),
                f"sampling -n {args.n} {cfg.data.name} images", "use a smaller -n")
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    # One call of the model's sampler (its burn-in included), so that the samples do not
    # depend on how they are reported: the stage says what runs and, at the end, how long.
    with torch.no_grad(), _shown(args), progress.Stage(f"sampling {cfg.model_name}", args.n,
                                                       "samples") as st:
        x = model.sample(args.n, generator=generator, **labels)
        st.advance(args.n)
    x = x.float().cpu()
    if cfg.data.dequantize or cfg.data.name == "image-patches":
        # Model space (logits, DC-removed or rescaled patches) back to pixels; the rescaling
        # depends on the training set, so the data are loaded.
        from genzoo.data import load_data

        x = load_data(cfg.data).to_images(x)
    save_image_grid(x.clamp(0, 1), image_shape, args.out)
    of_class = "" if args.label is None else f" of class {args.label}"
    print(f"wrote {args.n} samples{of_class} to {args.out}")
    return 0


def _labels(model, name: str, args: argparse.Namespace):
    """(n,) int64 labels ``--label`` on ``args.device``, for a model that samples given labels
    (:class:`~genzoo.core.protocols.LabelConditionalSampler`); a refusal naming what the
    model lacks otherwise."""
    import torch

    from genzoo.core.protocols import samples_given_labels

    if not samples_given_labels(model):
        raise GenzooError(
            f"--label {args.label}: model {name!r} has no class-conditional sampler (its "
            "sample() takes no labels y and it has no n_classes); train conditional-gan on a "
            "labelled data set to sample a chosen class"
        )
    if not 0 <= args.label < model.n_classes:
        raise GenzooError(f"--label {args.label}: {name!r} has the classes "
                          f"0..{model.n_classes - 1}")
    return torch.full((args.n,), args.label, dtype=torch.int64, device=args.device)


_HALF_MASKS = ("bottom-half", "top-half", "left-half", "right-half")


def _hidden_pixels(spec: str, image_shape: tuple[int, int], n: int, generator):
    """Boolean (n, H*W), True where ``spec`` hides a pixel."""
    import torch

    h, w = image_shape
    rows = torch.arange(h).unsqueeze(1).expand(h, w)
    cols = torch.arange(w).unsqueeze(0).expand(h, w)
    halves = {"bottom-half": rows >= h // 2, "top-half": rows < h // 2,
              "left-half": cols < w // 2, "right-half": cols >= w // 2}
    if spec in halves:
        return halves[spec].reshape(1, -1).expand(n, -1)
    if spec.startswith("random:"):
        try:
            p = float(spec.split(":", 1)[1])
        except ValueError:
            p = math.nan
        if not 0.0 <= p <= 1.0:
            raise GenzooError(f"--mask {spec}: P in random:P must be a number in [0, 1]")
        return torch.rand((n, h * w), generator=generator, device=generator.device).cpu() < p
    raise GenzooError(f"--mask {spec!r}: use one of {', '.join(_HALF_MASKS)} or random:P")


def _cmd_inpaint(args: argparse.Namespace) -> int:
    import torch

    from genzoo.cli.recall import NETWORKS, is_hopfield, recall
    from genzoo.core.protocols import INPAINT, has
    from genzoo.data import image_shape_of, load_data
    from genzoo.evaluation import progress
    from genzoo.utils.images import save_image_grid

    model, cfg = _load_run(args, "images")
    if is_hopfield(model):
        return recall(model, cfg, args, _hidden_pixels)
    if not has(model, INPAINT):
        raise GenzooError(
            f"model {cfg.model_name!r} cannot inpaint (it does not declare the {INPAINT!r} "
            "capability, and it is no Hopfield network to recall from a cue); train a model "
            "that inpaints, such as deep-nade, dae or gsn, or a hopfield run to recall"
        )
    if args.network is not None:
        raise GenzooError(f"--network {args.network}: the {', '.join(NETWORKS)} networks recall "
                          f"from a hopfield run; {cfg.model_name!r} inpaints by its own model")
    args.split = args.split or "test"
    image_shape = image_shape_of(cfg.data)
    x = load_data(cfg.data).split(args.split).x[: args.n]
    # One generator for the random mask and the completions, so they use different numbers.
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    hidden = _hidden_pixels(args.mask, image_shape, len(x), generator)
    x = x.to(device=args.device, dtype=next(model.parameters()).dtype)
    with torch.no_grad(), _shown(args), progress.Stage(f"inpainting with {cfg.model_name}",
                                                       len(x), "images") as st:
        # The Inpainter contract: (n_samples, B, D) completions; n_steps None is the model's
        # own chain length.
        filled = model.inpaint(x, ~hidden.to(args.device), generator=generator, n_samples=1,
                               n_steps=None)[0]
        st.advance(len(x))
    masked = torch.where(hidden.to(args.device), torch.full_like(x, 0.5), x)
    grid = torch.cat([x, masked, filled]).float().cpu().clamp(0, 1)
    save_image_grid(grid, image_shape, args.out, nrow=len(x))
    print(f"wrote {len(x)} inpainted {args.split} images ({args.mask} hidden) to {args.out}: "
          "rows original / masked input / completion")
    return 0


def _cmd_chain(args: argparse.Namespace) -> int:
    import torch

    from genzoo.core.protocols import ENERGY
    from genzoo.data import image_shape_of, load_data
    from genzoo.evaluation import progress
    from genzoo.models.chains import chain_kind
    from genzoo.training.checkpoint import load_model
    from genzoo.utils.animation import save_chain_gif, save_chain_strip

    counts = {"-n": "chains", "--steps": "steps", "--every": "steps between kept states"}
    _prepare(args, (".gif", ".png"), counts)
    model, cfg = load_model(args.run_dir, device=args.device)
    kind = chain_kind(model)
    markov, deep = kind == "markov", kind == "dbm"  # dbm: a sweep over all layers
    if kind is None:
        raise GenzooError(
            f"model {cfg.model_name!r} has no step-by-step sampling chain: it is neither a "
            "Markov-chain sampler (dae, cae, gsn), nor an energy model with a Gibbs step "
            f"(capability {ENERGY!r}: rbm, grbm, ...), nor a deep Boltzmann machine with block "
            "Gibbs sweeps (dbm, centered-dbm); `genzoo sample` draws from its own sampler"
        )
    image_shape = image_shape_of(cfg.data)
    dtype = next(model.parameters()).dtype
    d = image_shape[0] * image_shape[1]
    # The chain runs in the model's space (63 DC-removed values of a patch, logits of
    # dequantised images), which is not always the picture's.
    width = model.input_width
    in_model_space = cfg.data.dequantize or cfg.data.name == "image-patches"
    # Every state is kept, then stacked (two copies in the model's dtype, one float32 copy);
    # the picture draws every --every-th.
    states_bytes = (args.steps + 1) * args.n * max(d, width) * (2 * dtype.itemsize + 4)
    frames = args.steps // args.every + 2
    _check_fits(states_bytes + _picture_bytes(frames * args.n, d),
                f"a chain of -n {args.n} x --steps {args.steps} {cfg.data.name} images",
                "use a smaller -n or --steps, or a larger --every")
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    bundle = load_data(cfg.data) if args.start == "data" or in_model_space else None
    noise = torch.Generator().manual_seed(args.seed)
    if args.start == "data":
        x0 = bundle.test.x[: args.n]
    elif model.binary_input:
        x0 = torch.rand(args.n, width, generator=noise).round()
    elif model.input_range is not None:  # grey levels (Bernoulli means): uniform in the range
        lo, hi = model.input_range
        x0 = lo + (hi - lo) * torch.rand(args.n, width, generator=noise)
    else:  # real-valued data are standardised or unit-variance in the model's space
        x0 = torch.randn(args.n, width, generator=noise)
    x0 = x0.to(device=args.device, dtype=dtype)
    name = f"{args.n} chains of {cfg.model_name}"
    with torch.no_grad(), _shown(args), progress.Stage(name, args.steps, "steps") as st:
        if markov:
            states = model.chain(x0, args.steps, generator=generator)
            st.advance(args.steps)  # the model runs its chain in one call
        elif deep:
            states = _dbm_chain(model, x0, args.steps, generator, st)
        else:
            from genzoo.models.base import trusted_input

            states = [x0]
            model.check_input(x0, "the chain's start")
            with trusted_input():  # the chain's own states after the checked start
                for _ in range(args.steps):
                    states.append(model.gibbs_step(states[-1], generator=generator))
                    st.advance()
            states = torch.stack(states)
    states = states.float().cpu()
    if in_model_space:  # to pixels, as `genzoo sample` draws them
        states = bundle.to_images(states.reshape(-1, width)).reshape(len(states), args.n, d)
    states = states.clamp(0, 1)
    if args.out.suffix.lower() == ".gif":
        frames = save_chain_gif(states, image_shape, args.out, every=args.every)
        print(f"wrote {args.n} chains, {frames} frames (every {args.every}th of "
              f"{args.steps} steps) to {args.out}")
    else:
        save_chain_strip(states, image_shape, args.out, every=args.every)
        print(f"wrote {args.n} chains (every {args.every}th of {args.steps} steps) to {args.out}")
    return 0


def _dbm_chain(model, v, steps: int, generator, stage):
    """The visible states (steps + 1, n, D) of a DBM's block Gibbs chain (odd layers given
    even, then even given odd) from v (n, D), its hidden layers started at a draw from the
    bottom-up recognition pass (:meth:`~genzoo.models.boltzmann.dbm.DBM.mean_field_init`)."""
    import torch

    model.check_input(v, "the chain's start")
    x = [v] + [torch.bernoulli(q, generator=generator) for q in model.mean_field_init(v)]
    states = [v]
    for _ in range(steps):
        x = model.gibbs_sweep(x, generator=generator)
        states.append(x[0])
        stage.advance()
    return torch.stack(states)


def _cmd_filters(args: argparse.Namespace) -> int:

    from genzoo.data import image_shape_of
    from genzoo.training.checkpoint import load_model
    from genzoo.training.model_calls import first_layer_filters
    from genzoo.utils.images import save_image_grid

    _prepare(args, PNG, {"-n": "filters"})
    model, cfg = load_model(args.run_dir)
    image_shape = image_shape_of(cfg.data)
    found = first_layer_filters(model, image_shape)
    if found is None:
        d = image_shape[0] * image_shape[1]
        raise GenzooError(
            f"model {cfg.model_name!r} has no first-layer weight matrix W (D={d}, H) to show; "
            "`genzoo filters` works for RBM-family models, deep Boltzmann machines (dbm, "
            "centered-dbm, mp-dbm: their first layer) and the convolutional RBM"
        )
    images, shape = found
    images = images[: args.n]
    # Each filter scaled to its own range: the pattern matters, not the magnitude. Small
    # kernels (a 9x9 convolutional filter) are magnified to about 36 pixels a side.
    scale = max(2, 36 // max(shape))
    save_image_grid(images.cpu(), shape, args.out, scale=scale, normalize=True)
    print(f"wrote {len(images)} filters to {args.out}")
    return 0
