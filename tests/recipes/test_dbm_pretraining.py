"""Greedy layerwise pretraining of a DBM (a recipe): the doubled RBMs' conditionals, the
composition of the stack, and a pretrained DBM that models the digits better than the base
rate."""

from __future__ import annotations

import torch
from support import dbm_digits_config

from genzoo.data import load_data
from genzoo.evaluation.exact import exact_log_partition
from genzoo.models.boltzmann.dbm import DBM, DBMConfig
from genzoo.models.boltzmann.rbm import RBMConfig
from genzoo.recipes.dbm_pretraining import DoubledRBM, compose_dbm, pretrain_dbm


def _nll_bound(model, x) -> float:
    log_z = exact_log_partition(model).value
    with torch.no_grad():
        return float(model.variational_free_energy(x.double()).mean()) + log_z


def test_compose_dbm_doubles_halves_and_combines_biases():
    sizes = (5, 4, 3, 2)
    g = torch.Generator().manual_seed(0)
    rbms = []
    for l in range(3):
        r = DoubledRBM(RBMConfig(n_visible=sizes[l], n_hidden=sizes[l + 1], init_std=1.0),
                       generator=g)
        with torch.no_grad():
            r.b.normal_(generator=g)
            r.c.normal_(generator=g)
        rbms.append(r)
    dbm = compose_dbm(rbms, DBMConfig(n_visible=5, hidden=(4, 3, 2)))
    torch.testing.assert_close(dbm.W[0], rbms[0].W)
    torch.testing.assert_close(dbm.W[1], rbms[1].W / 2)
    torch.testing.assert_close(dbm.W[2], rbms[2].W)
    torch.testing.assert_close(dbm.b[0], rbms[0].b)
    torch.testing.assert_close(dbm.b[1], (rbms[0].c + rbms[1].b) / 2)
    torch.testing.assert_close(dbm.b[2], (rbms[1].c + rbms[2].b) / 2)
    torch.testing.assert_close(dbm.b[3], rbms[2].c)
    assert dbm.config.init_visible_bias is False


def test_doubled_rbm_conditionals():
    g = torch.Generator().manual_seed(0)
    cfg = RBMConfig(n_visible=4, n_hidden=3, init_std=1.0)
    up, down = DoubledRBM(cfg, "up", generator=g), DoubledRBM(cfg, "down", generator=g)
    v, h = torch.ones(2, 4), torch.ones(2, 3)
    torch.testing.assert_close(up.p_h_given_v(v), torch.sigmoid(up.c + 2 * v @ up.W))
    torch.testing.assert_close(up.p_v_given_h(h), torch.sigmoid(up.b + h @ up.W.T))
    torch.testing.assert_close(down.p_v_given_h(h), torch.sigmoid(down.b + 2 * h @ down.W.T))


def test_pretraining_runs_the_stack_and_gives_a_usable_dbm(tmp_path):
    cfg = dbm_digits_config("12,6", 100)
    bundle = load_data(cfg.data)
    model_cfg = cfg.model.replace(n_visible=bundle.n_features)
    dbm, rbms = pretrain_dbm(model_cfg, bundle, tmp_path, cfg)
    assert [r.up for r in rbms] == [2.0, 1.0] and [r.down for r in rbms] == [1.0, 2.0]
    torch.testing.assert_close(dbm.W[0], rbms[0].W)
    torch.testing.assert_close(dbm.b[1], (rbms[0].c + rbms[1].b) / 2)
    fresh = DBM(model_cfg)
    fresh.init_from_data(bundle.train.x)
    # Pretrained weights must already model the digits better than the base rate.
    assert _nll_bound(dbm.double(), bundle.valid.x) < _nll_bound(fresh.double(), bundle.valid.x)
