"""``fw.library.opcheck``: test a custom op the way PyTorch's ``torch.library.opcheck``
does (its fake against its kernel, its autograd against finite differences, compiled
against eager)."""

from __future__ import annotations

import numpy as np

from .errors import FrameworkError
from .tensor import Tensor, meta_tensor

DEFAULT_TEST_UTILS = ("test_schema", "test_autograd_registration", "test_faketensor",
                      "test_aot_dispatch_dynamic")


class OpCheckError(FrameworkError, AssertionError):
    """A custom op failed one of :func:`opcheck`'s tests."""


def opcheck(op, args, kwargs=None, *, test_utils=DEFAULT_TEST_UTILS, raise_exception=True,
            atol=None, rtol=None):
    """Run ``op(*args, **kwargs)`` eagerly, through its fake, under ``fw.compile`` and
    (when it has autograd and a float64 input) ``gradcheck``. Returns ``{test: "SUCCESS" |
    "SKIPPED" | the error}``; raises :class:`OpCheckError` on the first failure unless
    ``raise_exception=False``."""
    from .library import _lookup
    cop = _lookup(op)
    kwargs = dict(kwargs or {})
    tests = (test_utils,) if isinstance(test_utils, str) else tuple(test_utils)
    unknown = set(tests) - set(DEFAULT_TEST_UTILS)
    if unknown:
        from .errors import ArgumentError
        raise ArgumentError(f"opcheck: unknown test_utils {sorted(unknown)}; expected a subset "
                            f"of {list(DEFAULT_TEST_UTILS)}")
    expected = _outputs(cop(*_detached(args), **kwargs))
    checks = {"test_schema": _check_schema, "test_faketensor": _check_fake,
              "test_autograd_registration": _check_autograd,
              "test_aot_dispatch_dynamic": _check_compiled}
    results = {}
    for name in tests:
        try:
            ran = checks[name](cop, args, kwargs, expected, atol, rtol)
            results[name] = "SUCCESS" if ran else "SKIPPED"
        except Exception as e:  # report which test failed, with the op's name
            err = OpCheckError(f"opcheck({cop._qualname}): {name} failed: "
                               f"{type(e).__name__}: {e}")
            if raise_exception:
                raise err from e
            results[name] = err
    return results


def _detached(args):
    return tuple(a.detach() if isinstance(a, Tensor) else a for a in args)


def _outputs(out):
    return out if isinstance(out, tuple) else (out,)


def _close(got, want, atol, rtol, what):
    for i, (g, w) in enumerate(zip(got, want)):
        if tuple(g.shape) != tuple(w.shape) or g.dtype is not w.dtype:
            raise OpCheckError(f"{what}: output {i} is {g.dtype.name}{list(g.shape)}, the "
                               f"kernel's is {w.dtype.name}{list(w.shape)}")
        gn, wn = g.detach().numpy(), w.detach().numpy()
        tol = {} if atol is None else {"atol": atol, "rtol": rtol or 0.0}
        np.testing.assert_allclose(gn, wn, err_msg=f"{what}: output {i}", **tol)


def _check_schema(cop, args, kwargs, expected, atol, rtol):
    """Inputs not listed in mutates_args are left unchanged by the kernel."""
    before = [a.detach().numpy().copy() if isinstance(a, Tensor) else None for a in args]
    cop(*_detached(args), **kwargs)
    for i, (a, b) in enumerate(zip(args, before)):
        if b is not None and i not in cop._mutates and \
                not np.array_equal(a.detach().numpy(), b, equal_nan=True):
            raise OpCheckError(f"argument {i} was modified by the kernel but is not listed in "
                               "mutates_args")
    return True


def _check_fake(cop, args, kwargs, expected, atol, rtol):
    """The fake's output shapes and dtypes match the kernel's."""
    if cop._op is None:
        return False
    if cop._fake is None:
        raise OpCheckError(f"no fake registered (use {cop._name}.register_fake)")
    fakes = tuple(meta_tensor(a.shape, a.dtype, a.device) if isinstance(a, Tensor) else a
                  for a in args)
    got = _outputs(cop._fake(*fakes, **kwargs))
    for i, (g, w) in enumerate(zip(got, expected)):
        if tuple(g.shape) != tuple(w.shape) or g.dtype is not w.dtype:
            raise OpCheckError(f"fake output {i} is {g.dtype.name}{list(g.shape)}, the "
                               f"kernel's is {w.dtype.name}{list(w.shape)}")
    return True


def _check_autograd(cop, args, kwargs, expected, atol, rtol):
    """gradcheck through the op (float64 inputs that require grad), when it has autograd."""
    if cop._backward is None:
        return False
    diff = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad
            and a.dtype.name == "float64"]
    if not diff:
        return False
    from .autograd.gradcheck import gradcheck
    return gradcheck(lambda *a: cop(*a, **kwargs), tuple(args))


def _check_compiled(cop, args, kwargs, expected, atol, rtol):
    """``fw.compile`` captures the op (fullgraph) and gives the eager result."""
    if cop._op is None:
        return False
    from .compile_api import compile as fw_compile
    compiled = fw_compile(lambda *a: cop(*a, **kwargs), fullgraph=True)
    _close(_outputs(compiled(*_detached(args))), expected, atol, rtol, "compiled")
    return True
