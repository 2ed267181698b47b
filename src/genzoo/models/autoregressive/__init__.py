from genzoo.models.autoregressive import (  # noqa: F401  (registers the models)
    fvsbn,
    nade,
    neural_autoregressive,
)
