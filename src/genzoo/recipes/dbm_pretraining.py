"""Greedy layerwise pretraining of a deep Boltzmann machine from a stack of RBMs.

Salakhutdinov & Hinton (2009), "Deep Boltzmann machines", sec. 3.1; Salakhutdinov & Hinton
(2012), "An efficient learning procedure for deep Boltzmann machines", sec. 3.3; Goodfellow,
Bengio & Courville (2016), "Deep Learning", sec. 20.4.5.

In the DBM every hidden layer below the top receives input from above and below, while an RBM
of the stack sees only one side. The fix of SH09: the bottom RBM is trained with its bottom-up
weights doubled (p(h_1 | v) = sigmoid(c + 2 v^T W), p(v | h_1) = sigmoid(b + W h_1)), the top RBM
with its top-down weights doubled (p(h_L | h_{L-1}) = sigmoid(c + h_{L-1}^T W),
p(h_{L-1} | h_L) = sigmoid(b + 2 W h_L)), and the intermediate RBMs normally, their weights halved
when composed. Each RBM is trained by CD-k on binary draws of the previous RBM's hidden units
given its data (with the same, doubled, bottom-up input it was trained with).

Composition (``compose_dbm``)::

    W_1 = W^(1),  W_L = W^(L),  W_l = W^(l) / 2 for 1 < l < L
    b_0 = b^(1),  b_L = c^(L),  b_l = (c^(l) + b^(l+1)) / 2 for 0 < l < L

A hidden layer below the top gets its bias from two RBMs, the hidden bias of the one below and
the visible bias of the one above; each RBM's conditional accounts for the whole input to the
layer (once doubled, once from its own side), so the DBM takes half of each: the sum of the two
halves. With one hidden layer the DBM is the RBM itself.

``genzoo train dbm --pretrain EPOCHS`` (``model.pretrain_epochs``) calls :func:`pretrain_run`
on a fresh run: the stack is trained in ``RUN_DIR/pretrain/rbm_<l>`` and composed into the
model, whose SML training is then the run's one Trainer loop. A resumed run starts from its
checkpoint and never pretrains again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from genzoo.core.errors import ConfigError
from genzoo.data.datasets import DataBundle, Split
from genzoo.evaluation import progress
from genzoo.models.base import checks_input
from genzoo.models.boltzmann._ops import bernoulli
from genzoo.models.boltzmann.centered_dbm import CenteredDBM
from genzoo.models.boltzmann.dbm import DBM, DBMConfig
from genzoo.models.boltzmann.rbm import RBM, RBMConfig
from genzoo.run_config import RunConfig
from genzoo.training import Trainer
from genzoo.training.checkpoint import has_checkpoint


class DoubledRBM(RBM):
    """An RBM of the pretraining stack. ``double="up"``: bottom-up input doubled (the bottom
    RBM); ``"down"``: top-down input doubled (the top RBM); ``None``: a plain RBM. Trained by
    CD-k with the surrogate mean E(x, p(h|x)) - mean E(v_k, p(h|v_k)) (statistics detached),
    whose gradient is the CD update of SH09's pretraining code for either doubling. Not a
    registered model: the doubled conditionals do not come from one energy function."""

    def __init__(
        self, config: RBMConfig, double: str | None = None, generator: torch.Generator | None = None
    ) -> None:
        if double not in (None, "up", "down"):
            raise ConfigError(f"double={double!r} must be 'up', 'down' or None")
        if config.persistent:
            raise ConfigError("pretraining RBMs use CD-k: set persistent=False")
        super().__init__(config, generator)
        self.up = 2.0 if double == "up" else 1.0
        self.down = 2.0 if double == "down" else 1.0

    def _hidden_input(self, v: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.c, v, self.W, alpha=self.up)

    def _visible_input(self, h: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.b, h, self.W.T, alpha=self.down)

    @checks_input(nonempty=True)
    def loss(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """CD-k surrogate on a binary batch x (B, D); ``recon_error`` as in RBM.loss."""
        x = x.to(dtype=self.W.dtype)
        cfg = self.config
        with torch.no_grad():
            s_pos = self.p_h_given_v(x)
            h = bernoulli(s_pos, generator)
            for step in range(cfg.k):
                pv = self.p_v_given_h(h)
                if step == 0:
                    recon = ((x - pv) ** 2).mean()
                v = bernoulli(pv, generator)
                s_neg = self.p_h_given_v(v)
                if step < cfg.k - 1:
                    h = bernoulli(s_neg, generator)
        loss = self.energy(x, s_pos).mean() - self.energy(v, s_neg).mean()
        if cfg.weight_decay > 0:
            loss = loss + 0.5 * cfg.weight_decay * (self.W**2).sum()
        return {"loss": loss, "recon_error": recon}


@torch.no_grad()
def compose_dbm(rbms: list[RBM], config: DBMConfig) -> DBM:
    """The DBM whose parameters are the stack's, weights halved for intermediate layers and
    biases combined as in the module docstring. ``config`` must have the stack's sizes; the
    DBM gets it with ``init_visible_bias=False`` (keep the pretrained b_0 in training)."""
    sizes = (rbms[0].n_visible, *[r.n_hidden for r in rbms])
    if (config.n_visible, *config.hidden) != sizes:
        raise ConfigError(
            f"the RBM stack has sizes {sizes} but the DBM config asks for "
            f"{(config.n_visible, *config.hidden)}"
        )
    dbm = DBM(dataclasses.replace(config, init_visible_bias=False)).to(dtype=rbms[0].W.dtype)
    n = len(rbms)
    for i, r in enumerate(rbms):
        scale = 1.0 if i in (0, n - 1) else 0.5
        dbm.W[i].copy_(r.W * scale)
    dbm.b[0].copy_(rbms[0].b)
    dbm.b[n].copy_(rbms[-1].c)
    for l in range(1, n):
        dbm.b[l].copy_(0.5 * (rbms[l - 1].c + rbms[l].b))
    return dbm


def _doubling(layer: int, n_layers: int) -> str | None:
    if n_layers == 1:
        return None
    return "up" if layer == 0 else "down" if layer == n_layers - 1 else None


def pretrain_dbm(
    config: DBMConfig,
    bundle: DataBundle,
    run_dir: str | Path,
    run_config: RunConfig,
    rbm_k: int = 1,
    generator: torch.Generator | None = None,
    *,
    distributed: bool = False,
) -> tuple[DBM, list[DoubledRBM]]:
    """Greedy layerwise pretraining: train one RBM per hidden layer with the genzoo Trainer
    (``run_config.train`` settings, checkpoints in ``run_dir/rbm_<l>``), each on binary draws
    of the previous one's hidden units, then ``compose_dbm``. A layer whose directory holds a
    checkpoint is resumed from it. Returns (DBM, the RBMs). The
    DBM's config is ``config`` with ``init_visible_bias=False``, so that a Trainer run on it
    (whose run config must then carry ``dbm.config``) restarts only the persistent chains and
    keeps the pretrained b_0.

    ``run_config`` is a RunConfig (its ``train`` section is used; ``train.grid_samples`` is
    set to 0 since hidden features are not images). ``generator`` draws the hidden features
    (default: seeded with ``run_config.train.seed``). ``distributed``: every rank of the
    default process group calls this alike and each RBM is trained data-parallel
    (``Trainer(distributed=True)``), so every rank returns the same DBM.
    """
    if generator is None:
        generator = torch.Generator().manual_seed(run_config.train.seed)
    sizes = (config.n_visible, *config.hidden)
    train_x, valid_x = bundle.train_x(0), bundle.valid.x
    rbms: list[DoubledRBM] = []
    with progress.Stage(f"DBM pretraining, {len(config.hidden)} RBMs", len(config.hidden),
                        "RBMs") as stage:
        for l in range(len(config.hidden)):
            rbm_cfg = RBMConfig(
                n_visible=sizes[l], n_hidden=sizes[l + 1], k=rbm_k,
                weight_decay=config.weight_decay, init_std=config.init_std, sample_burn_in=10,
            )
            data = DataBundle(
                name=f"{bundle.name}-layer{l}", train=Split(train_x), valid=Split(valid_x),
                test=Split(valid_x[:0]), image_shape=(1, sizes[l]), binary=True,
                description=f"layer-{l} features of {bundle.name}",
            )
            rc = RunConfig(
                model_name="rbm", model=rbm_cfg, data=run_config.data,
                train=dataclasses.replace(run_config.train, grid_samples=0),
                eval=run_config.eval,
            )
            init = torch.Generator().manual_seed(run_config.train.seed + l)
            rbm = DoubledRBM(rbm_cfg, _doubling(l, len(config.hidden)), generator=init)
            layer_dir = Path(run_dir) / f"rbm_{l}"
            # An interrupted pretraining continues from each RBM's checkpoint (a finished RBM is
            # only loaded), so the stack is the one an uninterrupted run would have built.
            Trainer(rbm, rc, data, layer_dir, distributed=distributed).fit(
                resume=has_checkpoint(layer_dir)
            )
            rbm.eval()
            rbms.append(rbm)
            with torch.no_grad():
                # Drawn on the generator's device (the RBM trained on train.device).
                p_train, p_valid = (rbm.p_h_given_v(x.to(rbm.W)).to(generator.device)
                                    for x in (train_x, valid_x))
                train_x = bernoulli(p_train, generator).to(torch.float32)
                valid_x = bernoulli(p_valid, generator).to(torch.float32)
            stage.advance()
    dbm = compose_dbm(rbms, config)
    dbm.start_chains(bundle.train_x(0), generator)
    return dbm, rbms


def pretrain_run(
    model: DBM, run_config: RunConfig, bundle: DataBundle, run_dir: str | Path,
    generator: torch.Generator | None = None, *, distributed: bool = False,
) -> list[DoubledRBM]:
    """Greedy layerwise pretraining of ``model`` in place, for a fresh training run: a stack of
    RBMs trained for ``model.config.pretrain_epochs`` epochs each (CD-1; the other settings
    are ``run_config.train``'s, ``train.max_steps`` ignored) in ``run_dir/rbm_<l>``, composed
    (``compose_dbm``) and loaded into ``model``, a DBM or a centered DBM built from
    ``run_config.model``. Returns the RBMs.

    ``model.config.init_visible_bias`` must be False, so that the Trainer's ``init_from_data``
    keeps the pretrained parameters and only starts the chains (a centered DBM's offsets are
    loaded as 0, where its effective biases are the DBM's, and ``init_from_data`` then moves
    them to the data means without changing the distribution). Call it before
    ``Trainer.fit`` on a fresh run only: a resumed run loads its checkpoint instead.
    ``distributed``: as in :func:`pretrain_dbm` (every rank calls this; data-parallel RBMs).
    """
    cfg = model.config
    if cfg.pretrain_epochs < 1:
        raise ConfigError("pretrain_run needs model.pretrain_epochs >= 1")
    if cfg.init_visible_bias:
        raise ConfigError(
            "a pretrained DBM keeps its visible bias: set model.init_visible_bias=false "
            "(genzoo train --pretrain does)"
        )
    train = dataclasses.replace(run_config.train, epochs=cfg.pretrain_epochs, max_steps=None)
    dbm, rbms = pretrain_dbm(
        cfg, bundle, run_dir, dataclasses.replace(run_config, train=train), generator=generator,
        distributed=distributed,
    )
    load_composed(model, dbm)
    return rbms


@torch.no_grad()
def load_composed(model: DBM, dbm: DBM) -> None:
    """Copy the weights and biases of the composed ``dbm`` into ``model`` (same sizes); a
    centered DBM's offsets are set to 0, where its effective biases are its b's."""
    if isinstance(model, CenteredDBM):
        for mu in model.offsets:
            mu.zero_()
    for dst, src in zip([*model.W, *model.b], [*dbm.W, *dbm.b]):
        dst.copy_(src)
