"""Models whose sampler is a Markov chain: denoising and contractive auto-encoders used as
generative models, and generative stochastic networks. They declare ``IMPLICIT``: they sample
but have no tractable likelihood, so Parzen windows and MMD score them.

Modules register their models on import; :mod:`genzoo.core.registry` imports them all."""
