"""The papers' models behind one registry.

``build(name, in_shape, num_classes, *, seed=0, init="default", **options)`` returns a plain,
seeded ``nn.Module`` that maps float NCHW inputs to logits; ``list_models()`` names them;
``count_params(model)`` counts parameters (Zhang's Table 1 counts are a test).
"""

from genbench.models.registry import (
    INITS,
    build,
    count_params,
    list_models,
    model_spec,
    xavier_uniform_,
)
from genbench.models.spec import ModelSpec, Shape

__all__ = [
    "INITS",
    "ModelSpec",
    "Shape",
    "build",
    "count_params",
    "list_models",
    "model_spec",
    "xavier_uniform_",
]
