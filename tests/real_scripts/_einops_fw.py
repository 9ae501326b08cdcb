"""einops' ``rearrange`` / ``repeat`` / ``Rearrange`` for the patterns vit-pytorch uses, written
out as ``fw`` reshape / permute / expand calls (einops is not torch; each pattern is kept under
an ``# einops:`` comment, and the ported models call these with the original patterns).
"""

import framework.nn as nn


def rearrange(t, pattern, **axes):
    """The einops patterns vit-pytorch uses, as fw reshape / permute calls."""
    if pattern == 'b n (h d) -> b h n d':
        # einops: 'b n (h d) -> b h n d'
        b, n, hd = t.shape
        return t.reshape(b, n, axes['h'], hd // axes['h']).permute(0, 2, 1, 3)
    if pattern == 'b h n d -> b n (h d)':
        # einops: 'b h n d -> b n (h d)'
        b, h, n, d = t.shape
        return t.permute(0, 2, 1, 3).reshape(b, n, h * d)
    if pattern == 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)':
        # einops: 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)'
        b, c, hh, ww = t.shape
        p1, p2 = axes['p1'], axes['p2']
        t = t.reshape(b, c, hh // p1, p1, ww // p2, p2).permute(0, 2, 4, 3, 5, 1)
        return t.reshape(b, (hh // p1) * (ww // p2), p1 * p2 * c)
    if pattern == 'b h i j -> b i j h':
        # einops: 'b h i j -> b i j h'
        return t.permute(0, 2, 3, 1)
    if pattern == 'b i j h -> b h i j':
        # einops: 'b i j h -> b h i j'
        return t.permute(0, 3, 1, 2)
    raise NotImplementedError(f"rearrange: pattern {pattern!r} is not written out for fw")


def repeat(t, pattern, **axes):
    """The einops ``repeat`` patterns vit-pytorch uses, as fw expand calls."""
    if pattern == '... d -> b ... d':
        # einops: '... d -> b ... d'
        return t.unsqueeze(0).expand(axes['b'], *t.shape)
    if pattern == '() n d -> b n d':
        # einops: '() n d -> b n d'
        return t.expand(axes['b'], -1, -1)
    if pattern == 'd -> b n d':
        # einops: 'd -> b n d'
        return t.expand(axes['b'], axes['n'], t.shape[0])
    raise NotImplementedError(f"repeat: pattern {pattern!r} is not written out for fw")


class Rearrange(nn.Module):
    """einops.layers.torch.Rearrange: :func:`rearrange` as a layer."""

    def __init__(self, pattern, **axes):
        super().__init__()
        self.pattern, self.axes = pattern, axes

    def forward(self, x):
        return rearrange(x, self.pattern, **self.axes)
