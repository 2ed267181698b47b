"""Directed latent-variable models trained by variational or wake-sleep estimators.

Modules register their models on import; :mod:`genzoo.core.registry` imports them all."""
