"""PyTorch module paths scripts import from: nn.modules.utils/batchnorm/instancenorm,
nn.common_types, autograd.profiler, version, random.fork_rng."""

import framework as fw
from framework import nn


def test_nn_modules_utils_normalise_arguments():
    from framework.nn.modules.utils import (_ntuple, _pair, _quadruple, _reverse_repeat_tuple,
                                            _single, _triple)
    assert _single(2) == (2,) and _pair(3) == (3, 3) and _triple(1) == (1, 1, 1)
    assert _quadruple(0) == (0, 0, 0, 0) and _pair([1, 2]) == (1, 2) and _ntuple(5)(1) == (1,) * 5
    assert _reverse_repeat_tuple((1, 2), 2) == (2, 2, 1, 1)


def test_norm_classes_by_their_pytorch_module_paths():
    from framework.nn.modules.batchnorm import BatchNorm2d, _BatchNorm, _NormBase
    from framework.nn.modules.instancenorm import InstanceNorm2d, _InstanceNorm

    class FrozenBN(_BatchNorm):                    # how custom norm layers subclass it
        def _check_input_dim(self, input):
            pass
    m = FrozenBN(4)
    assert isinstance(m, _NormBase) and m(fw.randn(2, 4, 3, 3)).shape == (2, 4, 3, 3)
    assert BatchNorm2d is nn.BatchNorm2d and issubclass(InstanceNorm2d, _InstanceNorm)
    assert "FrozenBN" not in dir(nn)


def test_common_types_and_version():
    from framework.nn.common_types import _size_2_t  # noqa: F401
    assert fw.version.__version__ == fw.__version__
    assert fw.version.hip is None
    assert fw.version.cuda is None or isinstance(fw.version.cuda, str)


def test_autograd_profiler_names():
    with fw.autograd.profiler.profile() as prof:
        with fw.autograd.profiler.record_function("block"):
            fw.ones(3).sum()
    assert "block" in {r.name for r in prof.key_averages()}


def test_fork_rng_puts_the_streams_back():
    fw.manual_seed(0)
    expected = fw.rand(3)
    fw.manual_seed(0)
    with fw.random.fork_rng():
        inside = fw.rand(3)
        fw.rand(10)
    assert fw.equal(inside, expected) and fw.equal(fw.rand(3), expected)
    with fw.random.fork_rng(enabled=False):
        fw.rand(1)
    assert not fw.equal(fw.rand(3), expected)
