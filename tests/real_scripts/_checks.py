"""Checks shared by the ported-script tests (the ports themselves stay as published).

- :func:`assert_stats`, :func:`assert_compiled_matches_eager`, :func:`assert_states_close`,
  :func:`assert_params_close`: a ``fw.compile``'d training step against the same steps run
  eagerly, and its capture/recompile counters.
- :func:`assert_onnx_export_matches`: ``fw.onnx.export`` then onnxruntime against eager.
- :func:`grad_leaves`: fresh leaves for a float64 ``gradcheck`` over a module's weights.
- :func:`np_of`, :func:`np_params`, :func:`np_layer_norm`, :func:`np_linear`: NumPy
  reference building blocks.
- :func:`write_torch_checkpoint`: a state dict as the file ``torch.save`` writes.
"""

import numpy as np
import pytest

import framework as fw


def assert_stats(fn, **expected):
    """Assert ``fn.stats()`` has each expected value; a key ``min_<name>`` means at least.

    ``graph_breaks=[]`` asserts there were none. The message shows the whole stats dict.
    """
    st = fn.stats()
    for key, want in expected.items():
        if key.startswith("min_"):
            name = key[len("min_"):]
            assert st[name] >= want, (name, st)
        elif want is None:
            assert st[key] is None, (key, st)
        else:
            assert st[key] == want, (key, st)
    return st


def assert_states_close(got, want, rtol=1e-4, atol=1e-5):
    """Compare two model states: dicts name -> array (by key), or lists of arrays (in order)."""
    if isinstance(want, dict):
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=atol, err_msg=k)
    else:
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def assert_params_close(got, want, rtol=1e-4, atol=1e-5):
    """Compare two modules' ``named_parameters()`` pairwise (in order), naming the parameter."""
    for (n, pe), (_, pc) in zip(want.named_parameters(), got.named_parameters()):
        np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(), rtol=rtol,
                                   atol=atol, err_msg=n)


def assert_compiled_matches_eager(run, rtol=1e-4, atol=1e-5, **expected_stats):
    """Run ``run(False)`` (eager) then ``run(True)`` (compiled) and compare them.

    ``run(compiled)`` returns ``(losses, state, fn)`` with ``state`` as for
    :func:`assert_states_close` and ``fn`` the step it called. The compiled ``fn``'s stats
    are checked with :func:`assert_stats` first, then losses and states with rtol/atol.
    Returns the compiled ``fn``.
    """
    l_eager, s_eager, _ = run(False)
    l_comp, s_comp, fn = run(True)
    assert_stats(fn, **expected_stats)
    np.testing.assert_allclose(l_comp, l_eager, rtol=rtol, atol=atol)
    assert_states_close(s_comp, s_eager, rtol=rtol, atol=atol)
    return fn


def assert_onnx_export_matches(model, args, path, rtol=1e-4, atol=1e-5, sub_batch=None,
                               **export_kwargs):
    """Export ``model`` on ``args`` to ``path``, run it in onnxruntime (CPU), compare with eager.

    ``args`` is a tensor or a tuple of tensors, fed to the session in input order. Output 0
    is compared with ``model(*args)`` under ``no_grad`` (every output, in order, when the
    model returns a tuple or list of tensors); with ``sub_batch`` the first ``sub_batch``
    rows are run again (a dynamic batch axis). Skips without onnxruntime.
    """
    ort = pytest.importorskip("onnxruntime")
    fw.onnx.export(model, args, str(path), **export_kwargs)
    args = args if isinstance(args, tuple) else (args,)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with fw.no_grad():
        out = model(*args)
    wants = [o.numpy() for o in out] if isinstance(out, (tuple, list)) else [out.numpy()]
    names = [i.name for i in sess.get_inputs()]
    gots = sess.run(None, {n: np_of(a) for n, a in zip(names, args, strict=True)})
    for got, want in zip(gots, wants, strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    if sub_batch is not None:
        feed = {n: np_of(a)[:sub_batch] for n, a in zip(names, args, strict=True)}
        for got, want in zip(sess.run(None, feed), wants, strict=True):
            np.testing.assert_allclose(got, want[:sub_batch], rtol=rtol, atol=atol)


def grad_leaves(*tensors):
    """Detached copies of ``tensors`` that require grad: the inputs of a ``gradcheck``."""
    return tuple(t.detach().clone().requires_grad_() for t in tensors)


def np_of(t):
    """A tensor's values as a NumPy array (detached from autograd)."""
    return t.detach().numpy()


def np_params(state_dict):
    """A state dict as NumPy float64 arrays, for a float64 reference forward."""
    return {k: v.detach().numpy().astype(np.float64) for k, v in state_dict.items()}


def np_layer_norm(p, x, pre, eps=1e-5):
    """LayerNorm over the last axis with ``p[pre + ".weight"]`` and ``p[pre + ".bias"]``."""
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * p[pre + ".weight"] + p[pre + ".bias"]


def np_linear(p, x, pre, bias=True):
    """``x @ W.T (+ b)`` with ``W = p[pre + ".weight"]`` and ``b = p[pre + ".bias"]``."""
    y = x @ p[pre + ".weight"].T
    return y + p[pre + ".bias"] if bias else y


def write_torch_checkpoint(state_dict, path, rename=None):
    """Write ``state_dict`` as the zip ``torch.save(model.state_dict(), path)`` makes: plain
    tensors in an OrderedDict with its ``_metadata`` (module versions). ``rename`` maps a key
    to the name an older checkpoint gave it."""
    from tests import torch_zip_writer as tz
    rename = rename or {}
    items = []
    for i, (k, v) in enumerate(state_dict.items()):
        arr = np.array(v.detach().numpy(), order="C")  # (ascontiguousarray makes 0-d 1-d)
        items.append((rename.get(k, k), tz.tensor(tz.Storage(arr, str(i)), size=arr.shape)))
    tz.write(tz.ordered_dict(items, metadata=getattr(state_dict, "_metadata", None)), str(path))
    return path
