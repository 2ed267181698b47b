from genzoo.models.directed import vae  # noqa: F401  (registers the models)
