"""``fw.utils.hooks``: the handle ``register_*_hook`` methods return, as
``torch.utils.hooks.RemovableHandle`` (the one class nn.Module hooks use)."""

from ..nn.modules._hooks import RemovableHandle

__all__ = ["RemovableHandle"]
