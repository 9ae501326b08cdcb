"""Framework exceptions.

Each one subclasses the built-in exception a Python user would catch for the same
mistake, so ``except ValueError`` keeps working, and carries a message naming the op and
the shapes, dtypes or argument at fault. Shape and dtype errors are also ``RuntimeError``s,
which is what PyTorch raises for them ("The size of tensor a (3) must match...", "expected
scalar type Float but found Double"), so a script's ``except RuntimeError`` catches them
too.
"""


class FrameworkError(Exception):
    """Base class of every error raised on purpose by the framework."""


class ShapeError(FrameworkError, ValueError, RuntimeError):
    """Shapes that do not fit an op (broadcasting, matmul, reshape, cat, ...)."""


class DTypeError(FrameworkError, TypeError, RuntimeError):
    """A dtype an op does not accept, or an invalid cast."""


class ArgumentError(FrameworkError, ValueError):
    """An argument outside its allowed values (a dim out of range, a bad mode string)."""


class FwIndexError(FrameworkError, IndexError):
    """An index out of range or of an unsupported kind."""


class FwTypeError(FrameworkError, TypeError):
    """A value of the wrong Python type (not a dtype problem: see :class:`DTypeError`)."""


class FwZeroDivisionError(FrameworkError, ZeroDivisionError):
    """Integer division (``//``, ``%``, ``fmod``, ``div(rounding_mode=...)``) by zero."""


class AutogradError(FrameworkError, RuntimeError):
    """Misuse of autograd: freed graphs, modified saved tensors, leaf in-place ops."""


class DeviceError(FrameworkError, RuntimeError):
    """A device that is missing, or tensors on different devices in one op."""


class GraphBreak(FrameworkError, RuntimeError):  # noqa: N818  (named like Dynamo's)
    """Something a trace cannot capture (``.item()``, ``bool(t)``, ``.numpy()``, ...)."""


class TransformError(FrameworkError, RuntimeError):
    """Misuse of a functional transform at run time (a random op inside
    ``vmap(randomness='error')``)."""


class DistributedError(FrameworkError, RuntimeError):
    """Something that needs a distributed process group (this framework has no distributed
    runtime: world size and rank must be given explicitly)."""


class NoKernelError(FrameworkError, RuntimeError):
    """No implementation that the current settings allow can run the call (e.g.
    ``fw.nn.attention.sdpa_kernel`` restricting ``scaled_dot_product_attention``)."""


class SharedMemoryError(FrameworkError, RuntimeError):
    """A shared-memory segment that a tensor sent between processes needs is gone or
    released (``fw.multiprocessing``)."""
