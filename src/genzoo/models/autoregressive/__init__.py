from genzoo.models.autoregressive import (  # noqa: F401  (registers the models)
    deep_nade,
    fvsbn,
    nade,
    neural_autoregressive,
)
