"""Autoregressive networks: p(x) = prod_i p(x_i | x_<i), exact likelihoods.

Modules register their models on import; :mod:`genzoo.core.registry` imports them all."""
