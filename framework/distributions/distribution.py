"""``Distribution``: the base class of every probability distribution (shapes, argument
and sample validation, the defaults built from ``rsample``/``variance``/``entropy``)."""

from __future__ import annotations

import warnings

from ..autograd import no_grad
from ..errors import ArgumentError, FwTypeError, ShapeError
from ..tensor import Size, Tensor
from . import constraints
from .utils import as_size, is_tracing, lazy_property

__all__ = ["Distribution"]


class Distribution:
    """Abstract base class of probability distributions (``torch.distributions.
    Distribution``).

    A distribution has a ``batch_shape`` (independent, differently parametrized copies)
    and an ``event_shape`` (the shape of one draw): ``sample(sample_shape)`` returns
    ``sample_shape + batch_shape + event_shape`` and ``log_prob(value)`` returns one number
    per batch element. With ``validate_args`` (default True, see
    :meth:`set_default_validate_args`) parameters are checked against ``arg_constraints``
    and ``log_prob``'s values against ``support``; the checks that need the data are
    skipped while ``fw.compile`` captures a function.
    """

    has_rsample = False
    has_enumerate_support = False
    _validate_args = True

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Turn argument/sample validation on or off for distributions created without an
        explicit ``validate_args``."""
        if value not in (True, False):
            raise ArgumentError(f"set_default_validate_args: expected a bool, got {value!r}")
        Distribution._validate_args = bool(value)

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape = as_size(batch_shape)
        self._event_shape = as_size(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args and not is_tracing():
            try:
                arg_constraints = self.arg_constraints
            except NotImplementedError:
                arg_constraints = {}
                warnings.warn(f"{self.__class__} does not define `arg_constraints`. Please set "
                              "`arg_constraints = {}` or initialize the distribution with "
                              "`validate_args=False` to turn off validation.", stacklevel=2)
            for param, constraint in arg_constraints.items():
                if constraints.is_dependent(constraint):
                    continue
                if param not in self.__dict__ and isinstance(getattr(type(self), param, None),
                                                             lazy_property):
                    continue  # a parameter derived from another one: not given, not checked
                value = getattr(self, param)
                if not bool(constraint.check(value).all()):
                    raise ArgumentError(
                        f"Expected parameter {param} ({type(value).__name__} of shape "
                        f"{tuple(value.shape)}) of distribution {self!r} to satisfy the "
                        f"constraint {constraint!r}, but found invalid values:\n{value}")

    # -- shapes ----------------------------------------------------------------------------
    @property
    def batch_shape(self) -> Size:
        """The shape over which parameters are batched."""
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        """The shape of a single sample (without batching)."""
        return self._event_shape

    def expand(self, batch_shape, _instance=None):
        """A new distribution with the parameters expanded (not copied) to ``batch_shape``;
        arguments are not checked again."""
        raise NotImplementedError(f"{type(self).__name__} does not implement expand")

    def _extended_shape(self, sample_shape=()) -> Size:
        """``sample_shape + batch_shape + event_shape``."""
        return Size(tuple(as_size(sample_shape)) + tuple(self._batch_shape) +
                    tuple(self._event_shape))

    # -- what subclasses define ------------------------------------------------------------
    @property
    def arg_constraints(self) -> dict:
        """Parameter name -> :class:`~framework.distributions.constraints.Constraint`."""
        raise NotImplementedError

    @property
    def support(self):
        """The constraint every sample satisfies."""
        raise NotImplementedError

    @property
    def mean(self) -> Tensor:
        """The mean of the distribution."""
        raise NotImplementedError(f"{self.__class__} does not implement mean")

    @property
    def mode(self) -> Tensor:
        """The mode of the distribution."""
        raise NotImplementedError(f"{self.__class__} does not implement mode")

    @property
    def variance(self) -> Tensor:
        """The variance of the distribution."""
        raise NotImplementedError(f"{self.__class__} does not implement variance")

    @property
    def stddev(self) -> Tensor:
        """The standard deviation: ``variance.sqrt()``."""
        return self.variance.sqrt()

    def sample(self, sample_shape=()) -> Tensor:
        """Draw ``sample_shape`` samples (no gradient flows back to the parameters)."""
        with no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        """Draw reparametrized samples: gradients flow back to the parameters."""
        raise NotImplementedError(f"{type(self).__name__} does not implement rsample "
                                  "(has_rsample is False): use sample()")

    def log_prob(self, value: Tensor) -> Tensor:
        """Log of the density (or mass) at ``value``, one number per batch element."""
        raise NotImplementedError

    def cdf(self, value: Tensor) -> Tensor:
        """The cumulative distribution function at ``value``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement cdf")

    def icdf(self, value: Tensor) -> Tensor:
        """The inverse cumulative distribution function at ``value``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement icdf")

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """All values of a discrete distribution along dim 0: shape ``(cardinality,) +
        batch_shape + event_shape`` (``expand=False``: batch dims of size 1)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement "
                                  "enumerate_support")

    def entropy(self) -> Tensor:
        """The entropy, of shape ``batch_shape``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement entropy")

    def perplexity(self) -> Tensor:
        """``exp(entropy())``."""
        return self.entropy().exp()

    # -- validation ------------------------------------------------------------------------
    def _validate_sample(self, value) -> None:
        """Check that ``value`` broadcasts with ``batch_shape + event_shape`` and lies in
        ``support`` (a ValueError-family error naming the distribution if not)."""
        if not isinstance(value, Tensor):
            raise FwTypeError("The value argument to log_prob must be a Tensor, got "
                              f"{type(value).__name__}")
        actual = Size(value.shape)
        n_event = len(self._event_shape)
        if len(actual) < n_event or \
                tuple(actual[len(actual) - n_event:]) != tuple(self._event_shape):
            raise ShapeError(f"The right-most size of value must match event_shape: "
                             f"{actual} vs {self._event_shape}.")
        expected = self._batch_shape + self._event_shape
        for i, j in zip(reversed(actual), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ShapeError(f"Value is not broadcastable with batch_shape+event_shape: "
                                 f"{actual} vs {expected}.")
        if is_tracing():
            return
        try:
            support = self.support
        except NotImplementedError:
            warnings.warn(f"{self.__class__} does not define `support` to enable sample "
                          "validation. Please initialize the distribution with "
                          "`validate_args=False` to turn off validation.", stacklevel=3)
            return
        if not bool(support.check(value).all()):
            raise ArgumentError(
                f"Expected value argument ({type(value).__name__} of shape "
                f"{tuple(value.shape)}) to be within the support ({support!r}) of the "
                f"distribution {self!r}, but found invalid values:\n{value}")

    def _get_checked_instance(self, cls, _instance=None):
        """The blank instance ``expand`` fills (a subclass with its own ``__init__`` must
        define its own ``expand``)."""
        if _instance is None and type(self).__init__ != cls.__init__:
            raise NotImplementedError(
                f"Subclass {self.__class__.__name__} of {cls.__name__} that defines a custom "
                "__init__ method must also define a custom .expand() method.")
        return self.__new__(type(self)) if _instance is None else _instance

    def _expand_into(self, new, batch_shape, *names):
        """The common end of ``expand``: ``new`` (from :meth:`_get_checked_instance`) gets
        the parameters ``names`` of this distribution expanded (not copied) to
        ``batch_shape + event_shape``, the shapes, and this distribution's
        ``validate_args`` (the arguments are not checked again). Returns ``new``."""
        batch_shape = Size(batch_shape)
        for name in names:
            setattr(new, name, getattr(self, name).expand(batch_shape + self._event_shape))
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def __repr__(self) -> str:
        try:
            names = [k for k in self.arg_constraints if k in self.__dict__]
        except NotImplementedError:
            names = []
        args = ", ".join(_describe(p, self.__dict__[p]) for p in names)
        return f"{self.__class__.__name__}({args})"


def _describe(name, value) -> str:
    """``name: value`` for one-element parameters (a number when 0-dim, as PyTorch's
    ``Tensor.__format__``), else ``name: size``."""
    if value.numel() != 1:
        return f"{name}: {value.size()}"
    return f"{name}: {value.item() if value.ndim == 0 else value}"
