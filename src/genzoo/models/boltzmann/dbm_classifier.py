"""A deep Boltzmann machine turned into a feed-forward classifier for discriminative fine-tuning.

Salakhutdinov & Hinton (2009), "Deep Boltzmann machines", sec. 5 (fig. 4); Salakhutdinov & Hinton
(2012), sec. 5. The mean-field posterior of the top-down layer is computed once per example with
the trained DBM and kept fixed; the MLP takes the input augmented with it, (v, q_2), and starts
from the DBM's weights::

    h_1 = sigmoid(b_1 + v^T W_1 + q_2^T W_2^T)         (the DBM's mean-field update of layer 1)
    h_l = sigmoid(b_l + h_{l-1}^T W_l),  l = 2..L     (bottom-up, as in the recognition pass)
    p(y | v) = softmax(d + h_L^T U)                     (U, d new, zero-initialised)

and every weight is then trained by back-propagation of -log p(y | v). With one hidden layer
there is no q_2 and the MLP is the RBM's recognition network.

Fine-tuning goes through the one genzoo Trainer: the classifier learns from labels
(``needs_labels``), its ``loss(v, y=...)`` computes q_2 with a frozen copy of the DBM (mean
field is deterministic, so this is the fixed feature of SH09, recomputed rather than stored),
and ``predict`` gives the labels for ``classification_error``. Starting it from a trained DBM
run (reading the run's config and checkpoint) is a recipe, :mod:`genzoo.recipes.dbm_classifier`;
this module holds the model alone.

From the command line it is the model ``dbm-classifier``, started from a trained run::

    genzoo train dbm-classifier --data mnist --set data.binarize=dynamic \\
        --set model.dbm_run=DBM_RUN --out CLF
    genzoo evaluate CLF --task classify

(the fixed binarized MNIST has no labels, so a DBM trained on it is fine-tuned on MNIST with
dynamic binarization).

The run is self-contained: its config carries the source DBM's model name and config
(``dbm_model``, ``dbm_config``, filled in from ``dbm_run`` before training by
:func:`genzoo.recipes.dbm_classifier.resolve_source`), and its checkpoint
the frozen DBM, so ``genzoo.load(CLF)`` does not need ``DBM_RUN`` any more.
"""

from __future__ import annotations

import dataclasses
import json

import torch
import torch.nn.functional as F
from torch import nn

from genzoo.core.config import Config, check
from genzoo.core.errors import ConfigError, DataError, GenzooError
from genzoo.core.protocols import CLASSIFIER
from genzoo.core.registry import get_model_spec, register_model
from genzoo.models.base import GenzooModel, checks_input, train_recipe
from genzoo.models.boltzmann.dbm import DBM

# The registered models a classifier starts from.
SOURCES = ("dbm", "centered-dbm")


@torch.no_grad()
def dbm_features(dbm: DBM, v: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """q_2(v): the converged mean-field posterior of the second hidden layer (N, n_2), the
    extra input of :class:`DBMClassifier` (an empty (N, 0) tensor for a one-layer DBM)."""
    p = dbm.b[0]
    if dbm.n_layers < 2:
        return v.new_zeros(len(v), 0)
    return torch.cat(
        [dbm.mean_field(v[s : s + batch_size].to(p))[0][1] for s in range(0, len(v), batch_size)]
    )


@dataclasses.dataclass(frozen=True)
class DBMClassifierConfig(Config):
    """Hyperparameters of the DBM classifier.

    ``dbm_run``: run directory of a trained ``dbm`` or ``centered-dbm`` whose weights start the
    MLP (read once, when a fresh run starts). ``n_classes``: K, the size of the softmax layer.
    ``dbm_model`` / ``dbm_config``: the source DBM's registered name and its model config as a
    JSON object; ``genzoo train`` fills them in from ``dbm_run``
    (:func:`genzoo.recipes.dbm_classifier.resolve_source`), and a checkpoint is rebuilt from
    them alone. Without ``dbm_run`` the network starts from the
    DBM's own random initialisation: the no-pretraining baseline of the same architecture.
    """

    dbm_run: str | None = None
    n_classes: int = 10
    dbm_model: str | None = None
    dbm_config: str | None = None

    def validate(self) -> None:
        check(self.n_classes >= 2, f"model.n_classes={self.n_classes} must be >= 2")
        check(
            self.dbm_model in (None, *SOURCES),
            f"model.dbm_model={self.dbm_model!r}: the classifier starts from one of "
            f"{', '.join(SOURCES)}",
        )
        check(
            self.dbm_config is None or self.dbm_model is not None,
            "model.dbm_config needs model.dbm_model (both are filled in from model.dbm_run)",
        )
        if self.dbm_config is not None:
            self.source_config()

    def source_config(self):
        """The source DBM's model config (a DBMConfig / CenteredDBMConfig)."""
        try:
            fields = json.loads(self.dbm_config)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"model.dbm_config is not a JSON object: {exc}") from None
        return get_model_spec(self.dbm_model).config_cls.from_dict(fields, "model.dbm_config")

    def resolve_for_data(self, bundle) -> DBMClassifierConfig:
        """Check that the data fit the source DBM (the same number of visible units, labels, at
        most ``n_classes`` classes); ``dbm_config`` must be set (``genzoo train`` fills it
        from ``dbm_run`` first). Returns self."""
        cfg = self
        if cfg.dbm_config is None:
            if cfg.dbm_run is None:
                raise ConfigError(
                    "dbm-classifier starts from a trained DBM: set model.dbm_run=RUN_DIR of a "
                    "`genzoo train dbm` (or centered-dbm) run"
                )
            raise ConfigError(
                f"model.dbm_config is unset: read it from model.dbm_run={cfg.dbm_run} with "
                "genzoo.recipes.dbm_classifier.resolve_source(config)"
            )
        n_visible = cfg.source_config().n_visible
        if n_visible != bundle.n_features:
            raise DataError(
                f"the DBM has {n_visible} visible units but the data have {bundle.n_features} "
                "features; train the classifier on the DBM's data set (--data)"
            )
        if bundle.train.y is None:
            raise DataError(
                "the DBM classifier learns from labels and this data set has none; pick a "
                "labelled one (a DBM trained on binarized-mnist: --data mnist --set "
                "data.binarize=dynamic)"
            )
        n_seen = int(bundle.train.y.max()) + 1
        if n_seen > cfg.n_classes:
            raise DataError(
                f"the labels go up to {n_seen - 1} but model.n_classes={cfg.n_classes}; set "
                f"model.n_classes={n_seen}"
            )
        return cfg


@register_model(
    "dbm-classifier", family="boltzmann", paper="Salakhutdinov & Hinton 2009 (DBM), sec. 5"
)
class DBMClassifier(GenzooModel):
    """MLP initialised from a trained DBM (input + q(h2|v)), fine-tuned by backprop.

    MLP initialised from a DBM; ``forward(v, q2)`` returns class logits (B, K). Not a
    generative model (capability ``CLASSIFIER`` only: no ``sample``): fine-tune it with the
    Trainer (``needs_labels``; ``loss(v, y=y)``) or with any optimiser on ``loss(v, q2=q2, y=y)``.
    The submodule ``dbm`` is a frozen copy of the DBM (``requires_grad`` False, so no optimiser
    built from the trainable parameters moves it) that gives q_2 when it is not passed.

    Build it from a config whose ``dbm_config`` is set (as ``genzoo train`` and checkpoints
    do), then :meth:`init_from_dbm` (:func:`genzoo.recipes.dbm_classifier.start_from_run` does
    it from ``dbm_run``); or in one call with :meth:`from_dbm`.
    """

    test_overrides = (
        "model.dbm_model=dbm",
        (
            'model.dbm_config={"n_visible": 64, "hidden": [8, 6], "n_chains": 10, '
            '"mf_max_iters": 5}'
        ),
    )

    config_class = DBMClassifierConfig
    train_defaults = train_recipe(
        optimizer="adam", lr=0.01, lr_schedule="linear", lr_final_factor=0.01,
    )
    needs_labels = True
    mean_field_input = True  # mean field reads grey levels as Bernoulli means (data.grey_eval)
    capabilities = frozenset({CLASSIFIER})

    def __init__(self, config: DBMClassifierConfig) -> None:
        super().__init__(config)
        if config.dbm_config is None:  # dbm_model alone says too little to build the DBM
            raise ConfigError(
                "model.dbm_config is unset: build the classifier with DBMClassifier.from_dbm, "
                "or read model.dbm_run's config first "
                "(genzoo.recipes.dbm_classifier.resolve_source(config))"
            )
        dbm = get_model_spec(config.dbm_model).build(config.source_config())
        self.dbm = dbm.requires_grad_(False).eval()
        with torch.no_grad():
            self.W = nn.ParameterList([nn.Parameter(W.detach().clone()) for W in dbm.W])
            self.b = nn.ParameterList(
                [nn.Parameter(dbm.bias(l).detach().clone()) for l in range(1, dbm.n_layers + 1)]
            )
        top = dbm.W[-1].shape[1]
        self.U = nn.Parameter(torch.zeros(top, config.n_classes, dtype=dbm.W[0].dtype))
        self.d = nn.Parameter(torch.zeros(config.n_classes, dtype=dbm.W[0].dtype))
        # Whether init_from_dbm has run (not saved: a checkpoint holds the started weights).
        self.started = False

    @classmethod
    def from_dbm(cls, dbm: DBM, n_classes: int) -> DBMClassifier:
        """The classifier of a DBM in memory (``dbm``'s registered model and config are
        recorded; ``dbm`` itself is copied, not kept)."""
        names = [n for n in SOURCES if type(dbm) is get_model_spec(n).cls]
        if not names:
            raise ConfigError(
                f"the classifier starts from one of {', '.join(SOURCES)}, not a "
                f"{type(dbm).__name__}"
            )
        name = names[0]
        config = DBMClassifierConfig(
            n_classes=n_classes, dbm_model=name, dbm_config=json.dumps(dbm.config.to_dict())
        )
        return cls(config).to(dbm.W[0]).init_from_dbm(dbm)

    @torch.no_grad()
    def init_from_dbm(self, dbm: DBM) -> DBMClassifier:
        """Copy ``dbm`` into the frozen feature extractor and its weights and effective biases
        into the MLP; the output layer (U, d) starts at zero. ``dbm`` must have the recorded
        architecture. Returns self."""
        if dbm.config != self.dbm.config:
            raise ConfigError(
                "the DBM differs from the one this classifier was configured for "
                f"({dbm.config} vs {self.dbm.config}); build the classifier with from_dbm"
            )
        self.dbm.load_state_dict(dbm.state_dict())
        for l in range(dbm.n_layers):
            self.W[l].copy_(dbm.W[l])
            self.b[l].copy_(dbm.bias(l + 1))
        self.U.zero_()
        self.d.zero_()
        self.started = True
        return self

    @property
    def input_width(self) -> int:
        """D, the visible units of the DBM it classifies with."""
        return self.dbm.n_visible

    @checks_input
    def init_from_data(
        self, x_train: torch.Tensor, generator: torch.Generator | None = None
    ) -> None:
        """Called by the Trainer when a fresh run starts: a classifier configured with
        ``dbm_run`` must have been started from that DBM already (ConfigError otherwise),
        since reading a run is not the model's business. Without ``dbm_run`` the random
        initialisation stays (the no-pretraining baseline)."""
        if self.config.dbm_run is not None and not self.started:
            raise ConfigError(
                f"the classifier of model.dbm_run={self.config.dbm_run} has not been started "
                "from that DBM: call genzoo.recipes.dbm_classifier.start_from_run(model) "
                "before training (genzoo train does)"
            )

    def hidden(self, v: torch.Tensor, q2: torch.Tensor) -> list[torch.Tensor]:
        """[h_1, ..., h_L] of the MLP for v (B, D) and the fixed features q2 (B, n_2)."""
        a = self.b[0] + v @ self.W[0]
        if len(self.W) > 1:
            a = a + q2 @ self.W[1].T
        h = [torch.sigmoid(a)]
        for l in range(1, len(self.W)):
            h.append(torch.sigmoid(self.b[l] + h[-1] @ self.W[l]))
        return h

    def forward(self, v: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
        """Class logits (B, K)."""
        return self.d + self.hidden(v, q2)[-1] @ self.U

    def features(self, v: torch.Tensor) -> torch.Tensor:
        """q_2(v) (B, n_2) from the frozen DBM, in the classifier's dtype and device."""
        return dbm_features(self.dbm, v.to(self.W[0]))

    @checks_input(nonempty=True)
    def loss(
        self,
        v: torch.Tensor,
        /,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
        q2: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``loss``: mean -log p(y | v) (nats per example); ``error``: batch error rate. v (B, D)
        binary, y (B,) int64 labels (required), q2 (B, n_2) the fixed features (default:
        :meth:`features`). Deterministic: ``generator`` is accepted for the Trainer, not used."""
        if y is None:
            raise GenzooError("DBMClassifier.loss needs the labels y (B,) of the batch")
        v = v.to(self.W[0])
        logits = self(v, self.features(v) if q2 is None else q2)
        return {
            "loss": F.cross_entropy(logits, y),
            "error": (logits.argmax(-1) != y).to(logits.dtype).mean(),
        }

    @torch.no_grad()
    @checks_input
    def predict(self, v: torch.Tensor) -> torch.Tensor:
        """Most probable class (B,) int64 of each row of v (B, D)."""
        v = v.to(self.W[0])
        return self(v, self.features(v)).argmax(-1)
