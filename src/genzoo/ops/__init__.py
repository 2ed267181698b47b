"""Low-level math that several model families and the evaluators share: numerics of the
Bernoulli and Gaussian likelihoods (:mod:`~genzoo.ops.numerics`), enumeration of binary states
(:mod:`~genzoo.ops.enumeration`), the Gaussian kernels of the MMD
(:mod:`~genzoo.ops.kernels`) and the classification error of a model that predicts labels
(:mod:`~genzoo.ops.classification`). Nothing here knows about models, training or evaluation."""
