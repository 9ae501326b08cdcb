"""Alpha dropout layers for self-normalizing (SELU) networks."""

from __future__ import annotations

from .. import functional as F
from .dropout import _DropoutNd

__all__ = ["AlphaDropout", "FeatureAlphaDropout"]


class AlphaDropout(_DropoutNd):
    """Alpha dropout in training (keeps zero mean / unit variance), identity in eval."""

    def forward(self, input):
        return F.alpha_dropout(input, self.p, self.training, self.inplace)


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels of ``(N, C, ...)`` inputs in training."""

    def forward(self, input):
        return F.feature_alpha_dropout(input, self.p, self.training, self.inplace)
