"""``MultiLabelMarginLoss`` and ``TripletMarginWithDistanceLoss``."""

from __future__ import annotations

from ...errors import ArgumentError
from .. import functional as F
from .loss import _Loss

__all__ = ["MultiLabelMarginLoss", "TripletMarginWithDistanceLoss"]


class MultiLabelMarginLoss(_Loss):
    """Multi-class multi-label hinge loss on class-index targets (padded with -1)."""

    def forward(self, input, target):
        return F.multilabel_margin_loss(input, target, reduction=self.reduction)


class TripletMarginWithDistanceLoss(_Loss):
    """``max(d(a, p) - d(a, n) + margin, 0)`` with a custom ``distance_function``
    (default: the euclidean :func:`pairwise_distance`)."""

    def __init__(self, *, distance_function=None, margin: float = 1.0, swap: bool = False,
                 reduction: str = "mean"):
        super().__init__(reduction=reduction)
        if margin <= 0:
            raise ArgumentError(f"TripletMarginWithDistanceLoss: expected margin to be greater "
                                f"than 0, got {margin} instead")
        self.distance_function = distance_function if distance_function is not None \
            else F.pairwise_distance
        self.margin = margin
        self.swap = swap

    def forward(self, anchor, positive, negative):
        return F.triplet_margin_with_distance_loss(
            anchor, positive, negative, distance_function=self.distance_function,
            margin=self.margin, swap=self.swap, reduction=self.reduction)
