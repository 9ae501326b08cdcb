"""``nn.utils``: gradient clipping, parameter/vector conversion, parametrizations (and the
legacy hook-based weight/spectral norm), ``skip_init``, ``stateless.functional_call``,
``prune`` and the conv/linear + BatchNorm ``fusion`` helpers."""

from __future__ import annotations

import importlib
import importlib.util

from .clip_grad import (clip_grad_norm, clip_grad_norm_, clip_grad_value_,  # noqa: F401
                        clip_grads_with_norm_, get_total_norm)
from .convert_parameters import parameters_to_vector, vector_to_parameters  # noqa: F401
from . import parametrizations, parametrize, stateless  # noqa: F401,E402
from . import fusion, prune  # noqa: F401
from .fusion import (fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval,  # noqa: F401
                     fuse_linear_bn_weights)
from .init import skip_init  # noqa: F401
from .spectral_norm import remove_spectral_norm, spectral_norm  # noqa: F401
from .weight_norm import remove_weight_norm, weight_norm  # noqa: F401

for _name in ("rnn",):  # sub-packages maintained alongside
    if importlib.util.find_spec(f"{__name__}.{_name}") is not None:
        globals()[_name] = importlib.import_module(f"{__name__}.{_name}")
