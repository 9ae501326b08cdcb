"""``MixtureSameFamily``: a mixture whose components are one batched distribution (the
Gaussian mixtures of mixture density networks)."""

from __future__ import annotations

from ..autograd import no_grad
from ..errors import ArgumentError
from ..tensor import Size
from . import constraints
from .categorical import Categorical
from .distribution import Distribution
from .utils import as_size

__all__ = ["MixtureSameFamily"]


class MixtureSameFamily(Distribution):
    """A (batch of) mixture(s): ``mixture_distribution`` (a :class:`Categorical` over ``k``
    components) picks a component of ``component_distribution``, whose rightmost batch dim
    (of size ``k``) indexes the components; the mixture's batch shape must broadcast to the
    component's other batch dims. ``event_shape`` is the component's.

    ``log_prob`` is the ``logsumexp`` over components of the component log-densities plus
    the log mixture weights; ``sample`` draws a component index and gathers that
    component's sample; ``mean``/``variance`` follow the laws of total expectation and
    variance. There is no ``rsample`` (the component choice is discrete) and no closed-form
    entropy, as in PyTorch.

    Example: a batch of 3 mixtures of 5 bivariate diagonal Gaussians::

        mix = Categorical(logits=fw.randn(3, 5))
        comp = Independent(Normal(fw.randn(3, 5, 2), fw.rand(3, 5, 2) + 0.1), 1)
        gmm = MixtureSameFamily(mix, comp)   # batch_shape (3,), event_shape (2,)
    """

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(self, mixture_distribution, component_distribution, validate_args=None):
        if not isinstance(mixture_distribution, Categorical):
            raise ArgumentError("MixtureSameFamily: the mixture distribution needs to be an "
                                "instance of Categorical, got "
                                f"{type(mixture_distribution).__name__}")
        if not isinstance(component_distribution, Distribution):
            raise ArgumentError("MixtureSameFamily: the component distribution needs to be "
                                "an instance of Distribution, got "
                                f"{type(component_distribution).__name__}")
        comp_batch = component_distribution.batch_shape
        if len(comp_batch) < 1:
            raise ArgumentError("MixtureSameFamily: component_distribution needs a batch dim "
                                "indexing the components, but its batch_shape is ()")
        mdbs, cdbs = mixture_distribution.batch_shape, comp_batch[:-1]
        if len(mdbs) > len(cdbs) or any(m != 1 and m != c for m, c in
                                        zip(reversed(mdbs), reversed(cdbs))):
            raise ArgumentError(f"MixtureSameFamily: `mixture_distribution.batch_shape` "
                                f"({mdbs}) is not compatible with "
                                f"`component_distribution.batch_shape[:-1]` ({cdbs})")
        km, kc = mixture_distribution.param_shape[-1], comp_batch[-1]
        if km != kc:
            raise ArgumentError(f"MixtureSameFamily: the mixture distribution has {km} "
                                f"components but component_distribution.batch_shape[-1] is "
                                f"{kc}")
        self._mixture_distribution = mixture_distribution
        self._component_distribution = component_distribution
        self._num_component = km
        self._event_ndims = len(component_distribution.event_shape)
        super().__init__(cdbs, component_distribution.event_shape,
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(MixtureSameFamily, _instance)
        batch_shape = Size(batch_shape)
        new._component_distribution = self._component_distribution.expand(
            batch_shape + (self._num_component,))
        new._mixture_distribution = self._mixture_distribution.expand(batch_shape)
        new._num_component = self._num_component
        new._event_ndims = self._event_ndims
        return self._expand_into(new, batch_shape)

    @property
    def mixture_distribution(self) -> Categorical:
        """The :class:`Categorical` over components."""
        return self._mixture_distribution

    @property
    def component_distribution(self) -> Distribution:
        """The batched component distribution (rightmost batch dim: the component)."""
        return self._component_distribution

    @constraints.dependent_property
    def support(self):
        return self._component_distribution.support

    def _pad(self, x):
        """``x`` with a component dim inserted before the event dims."""
        return x.unsqueeze(-1 - self._event_ndims)

    def _mixture_weights(self):
        """Mixture probabilities with trailing 1s for the event dims."""
        probs = self._mixture_distribution.probs
        return probs.reshape(tuple(probs.shape) + (1,) * self._event_ndims)

    @property
    def mean(self):
        weights = self._mixture_weights()
        return (weights * self._component_distribution.mean).sum(-1 - self._event_ndims)

    @property
    def variance(self):
        dim = -1 - self._event_ndims
        weights = self._mixture_weights()
        comp = self._component_distribution
        mean_cond_var = (weights * comp.variance).sum(dim)
        var_cond_mean = (weights * (comp.mean - self._pad(self.mean)).pow(2)).sum(dim)
        return mean_cond_var + var_cond_mean

    def cdf(self, x):
        x = self._pad(x)
        cdf_x = self._component_distribution.cdf(x)
        return (cdf_x * self._mixture_distribution.probs).sum(-1)

    def log_prob(self, x):
        if self._validate_args:
            self._validate_sample(x)
        log_prob_x = self._component_distribution.log_prob(self._pad(x))  # [S, B, k]
        log_mix_prob = self._mixture_distribution.logits.log_softmax(-1)  # [B, k]
        return (log_prob_x + log_mix_prob).logsumexp(-1)  # [S, B]

    def sample(self, sample_shape=()):
        with no_grad():
            sample_shape = tuple(as_size(sample_shape))
            cdbs = tuple(self._batch_shape)
            event = tuple(self._event_shape)
            gather_dim = len(sample_shape) + len(cdbs)
            index = self._mixture_distribution.sample(sample_shape)  # S + mixture batch
            mdbs = tuple(index.shape[len(sample_shape):])
            ones = (1,) * (len(cdbs) - len(mdbs))
            index = index.reshape(sample_shape + ones + mdbs + (1,) * (1 + len(event)))
            index = index.expand(sample_shape + cdbs + (1,) + event)
            samples = self._component_distribution.sample(sample_shape)  # S + B + (k,) + E
            return samples.gather(gather_dim, index).squeeze(gather_dim)

    def __repr__(self) -> str:
        return (f"MixtureSameFamily(\n  {self._mixture_distribution},\n  "
                f"{self._component_distribution})")
