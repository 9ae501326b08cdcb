"""``torch.nn.modules.instancenorm``: the instance-norm classes by PyTorch's module path."""

from .normalization import (InstanceNorm1d, InstanceNorm2d, InstanceNorm3d,  # noqa: F401
                            _InstanceNorm)
