"""``fw.nested``: PyTorch's nested (jagged) tensors are not implemented in this framework.

Every constructor raises ``NotImplementedError`` naming what is missing and the usual
replacement: pad the sequences to one length (``fw.nn.utils.rnn.pad_sequence``) and pass a
key-padding mask (``attn_mask`` of ``scaled_dot_product_attention``).
"""

from __future__ import annotations

__all__ = ["nested_tensor", "as_nested_tensor", "to_padded_tensor", "narrow"]

_MSG = ("fw.nested.{name}: nested (jagged) tensors are not implemented in this framework; "
        "pad the sequences to one length (fw.nn.utils.rnn.pad_sequence) and pass a padding "
        "mask (attn_mask of F.scaled_dot_product_attention) instead")


def _missing(name):
    def fn(*args, **kwargs):
        raise NotImplementedError(_MSG.format(name=name))
    fn.__name__ = name
    fn.__doc__ = f"Not implemented: ``torch.nested.{name}`` (raises NotImplementedError)."
    return fn


nested_tensor = _missing("nested_tensor")
as_nested_tensor = _missing("as_nested_tensor")
to_padded_tensor = _missing("to_padded_tensor")
narrow = _missing("narrow")
