"""``fw.__future__``: opt-in behaviours, as ``torch.__future__``.

``set_swap_module_params_on_conversion(True)``: ``Module.to()`` / ``.float()`` /
``.bfloat16()``... replace each parameter's contents with ``fw.utils.swap_tensors`` (the
Parameter object stays, its class and ``__dict__`` come from the converted tensor), rather
than by setting ``param.data``. ``set_overwrite_module_params_on_conversion(True)``: those
methods register new Parameter objects instead (references held elsewhere, e.g. by an
optimizer, then go stale)."""

_swap = False
_overwrite = False


def set_swap_module_params_on_conversion(value: bool) -> None:
    """Use ``swap_tensors`` when a Module converts its parameters."""
    global _swap
    _swap = bool(value)


def get_swap_module_params_on_conversion() -> bool:
    """Whether Module conversions swap parameters (default False)."""
    return _swap


def set_overwrite_module_params_on_conversion(value: bool) -> None:
    """Make Module conversions register new Parameter objects."""
    global _overwrite
    _overwrite = bool(value)


def get_overwrite_module_params_on_conversion() -> bool:
    """Whether Module conversions register new Parameter objects (default False)."""
    return _overwrite
