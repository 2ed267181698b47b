"""Recipes: training one model from another, a layer above the models (a model never imports
them). :mod:`~genzoo.recipes.dbm_pretraining` builds a deep Boltzmann machine from a stack of
RBMs trained greedily, layer by layer; :mod:`~genzoo.recipes.dbm_classifier` starts the DBM
classifier from a trained DBM run. Each reads or writes runs through :mod:`genzoo.training`,
which is why it is not part of the model it builds."""
