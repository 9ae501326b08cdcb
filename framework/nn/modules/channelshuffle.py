"""ChannelShuffle (ShuffleNet's channel interleaving)."""

from __future__ import annotations

from .. import functional_resample as FR
from .module import Module

__all__ = ["ChannelShuffle"]


class ChannelShuffle(Module):
    """Interleave the channels of ``(N, C, *)`` across ``groups``."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, input):
        """Shuffle the channels."""
        return FR.channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
