"""Boltzmann machines: energy models trained by contrastive or stochastic maximum likelihood.

Modules register their models on import; :mod:`genzoo.core.registry` imports them all."""
