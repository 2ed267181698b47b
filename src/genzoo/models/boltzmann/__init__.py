from genzoo.models.boltzmann import rbm  # noqa: F401  (registers the model)
