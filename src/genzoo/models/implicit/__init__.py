"""Implicit generators: differentiable networks x = g(z) of noise z with no tractable
likelihood (GAN, conditional GAN, GMMN, GMMN+AE), trained by the one Trainer (adversarial
games through parameter groups stepped in turn) and evaluated from samples alone
(:mod:`genzoo.evaluation.sample_based`).

Modules register their models on import; :mod:`genzoo.core.registry` imports them all."""
