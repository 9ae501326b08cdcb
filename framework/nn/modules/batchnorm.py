"""``torch.nn.modules.batchnorm``: the batch-norm classes (defined in ``normalization``),
importable by PyTorch's module path, including the ``_NormBase`` / ``_BatchNorm`` bases that
custom norm layers subclass."""

from .normalization import (BatchNorm1d, BatchNorm2d, BatchNorm3d, SyncBatchNorm,  # noqa: F401
                            _BatchNorm, _NormBase)
