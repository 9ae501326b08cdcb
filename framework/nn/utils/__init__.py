"""``nn.utils``: gradient clipping and parameter/vector conversion."""

from __future__ import annotations

import importlib
import importlib.util

from .clip_grad import (clip_grad_norm, clip_grad_norm_, clip_grad_value_,  # noqa: F401
                        clip_grads_with_norm_, get_total_norm)
from .convert_parameters import parameters_to_vector, vector_to_parameters  # noqa: F401

for _name in ("rnn", "parametrize", "weight_norm"):  # sub-packages maintained alongside
    if importlib.util.find_spec(f"{__name__}.{_name}") is not None:
        globals()[_name] = importlib.import_module(f"{__name__}.{_name}")
