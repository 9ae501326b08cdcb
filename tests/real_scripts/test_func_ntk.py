"""pytorch/tutorials ``intermediate_source/neural_tangent_kernels.py`` ported to fw.

The tutorial's CNN, ``fnet_single`` (``functional_call`` on one unsqueezed sample), the
empirical NTK by Jacobian contraction (``vmap(jacrev(fnet_single), (None, 0))`` over a
parameter dict, ``einsum`` in 'full' / 'trace' / 'diagonal' modes) and by NTK-vector
products (``vjp`` and ``jvp`` over the parameter dict, ``vmap`` over the identity basis,
nested ``vmap`` over both batches). Images are 3x8x8 with 4 channels (tutorial: 3x32x32,
32 channels, ``Linear(21632, 10)``), batches of 4 and 3 (tutorial: 20 and 5). Beyond the
tutorial: the NTK is checked against Jacobians built from finite differences in float64,
and for symmetry / positive semi-definiteness.
"""
# ruff: noqa: UP008  (the original's lines are kept as written)

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
from framework.func import functional_call, jacrev, jvp, vjp, vmap

device = 'cpu'
CH, IMG = 4, 8                 # tutorial: 32, 32
FLAT = CH * (IMG - 6) ** 2     # tutorial: 21632


class CNN(nn.Module):
    def __init__(self):
        super(CNN, self).__init__()
        self.conv1 = nn.Conv2d(3, CH, (3, 3))
        self.conv2 = nn.Conv2d(CH, CH, (3, 3))
        self.conv3 = nn.Conv2d(CH, CH, (3, 3))
        self.fc = nn.Linear(FLAT, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = x.relu()
        x = self.conv2(x)
        x = x.relu()
        x = self.conv3(x)
        x = x.flatten(1)
        x = self.fc(x)
        return x


def _setup(dtype=fw.float32):
    fw.manual_seed(0)
    x_train = fw.randn(4, 3, IMG, IMG, device=device, dtype=dtype)
    x_test = fw.randn(3, 3, IMG, IMG, device=device, dtype=dtype)
    net = CNN().to(device).to(dtype)
    # Detaching the parameters because we won't be calling Tensor.backward().
    params = {k: v.detach() for k, v in net.named_parameters()}

    def fnet_single(params, x):
        return functional_call(net, params, (x.unsqueeze(0),)).squeeze(0)

    return x_train, x_test, net, params, fnet_single


def empirical_ntk_jacobian_contraction(fnet_single, params, x1, x2, compute='full'):
    # Compute J(x1)
    jac1 = vmap(jacrev(fnet_single), (None, 0))(params, x1)
    jac1 = jac1.values()
    jac1 = [j.flatten(2) for j in jac1]

    # Compute J(x2)
    jac2 = vmap(jacrev(fnet_single), (None, 0))(params, x2)
    jac2 = jac2.values()
    jac2 = [j.flatten(2) for j in jac2]

    # Compute J(x1) @ J(x2).T
    einsum_expr = None
    if compute == 'full':
        einsum_expr = 'Naf,Mbf->NMab'
    elif compute == 'trace':
        einsum_expr = 'Naf,Maf->NM'
    elif compute == 'diagonal':
        einsum_expr = 'Naf,Maf->NMa'
    else:
        assert False

    result = fw.stack([fw.einsum(einsum_expr, j1, j2) for j1, j2 in zip(jac1, jac2)])
    result = result.sum(0)
    return result


def empirical_ntk_ntk_vps(func, params, x1, x2, compute='full'):
    def get_ntk(x1, x2):
        def func_x1(params):
            return func(params, x1)

        def func_x2(params):
            return func(params, x2)

        output, vjp_fn = vjp(func_x1, params)

        def get_ntk_slice(vec):
            # This computes vec @ J(x2).T
            # `vec` is some unit vector (a single slice of the Identity matrix)
            vjps = vjp_fn(vec)
            # This computes J(X1) @ vjps
            _, jvps = jvp(func_x2, (params,), vjps)
            return jvps

        # Here's our identity matrix
        basis = fw.eye(output.numel(), dtype=output.dtype, device=output.device).view(output.numel(), -1)
        return vmap(get_ntk_slice)(basis)

    # get_ntk(x1, x2) computes the NTK for a single data point x1, x2
    # Since the x1, x2 inputs to empirical_ntk_ntk_vps are batched,
    # we actually wish to compute the NTK between every pair of data points
    # between {x1} and {x2}. That's what the vmaps here do.
    result = vmap(vmap(get_ntk, (None, 0)), (0, None))(x1, x2)

    if compute == 'full':
        return result
    if compute == 'trace':
        return fw.einsum('NMKK->NM', result)
    if compute == 'diagonal':
        return fw.einsum('NMKK->NMK', result)


def _fd_column(fnet_single, params, x, name, j, eps=1e-6):
    """d output / d params[name].flat[j] of one sample, by central differences."""
    outs = []
    for sign in (1, -1):
        w = params[name].numpy().copy()
        w.reshape(-1)[j] += sign * eps
        outs.append(fnet_single(dict(params, **{name: fw.tensor(w)}), x).numpy())
    return (outs[0] - outs[1]) / (2 * eps)


def _jacobian(fnet_single, params, x):
    """(10, P) Jacobian of one sample from jacrev, flattened over the parameter dict."""
    jac = jacrev(fnet_single)(params, x)
    return np.concatenate([jac[k].numpy().reshape(10, -1) for k in params], axis=1)


def test_jacobian_contraction_modes_and_shapes():
    x_train, x_test, _, params, fnet_single = _setup()
    full = empirical_ntk_jacobian_contraction(fnet_single, params, x_train, x_test)
    assert full.shape == (4, 3, 10, 10)
    trace = empirical_ntk_jacobian_contraction(fnet_single, params, x_train, x_test, 'trace')
    diag = empirical_ntk_jacobian_contraction(fnet_single, params, x_train, x_test,
                                              'diagonal')
    assert trace.shape == (4, 3) and diag.shape == (4, 3, 10)
    f = full.numpy()
    np.testing.assert_allclose(diag.numpy(), np.einsum('NMaa->NMa', f), rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(trace.numpy(), np.einsum('NMaa->NM', f), rtol=1e-4,
                               atol=1e-4)


def test_ntk_vector_products_match_the_jacobian_contraction():
    x_train, x_test, _, params, fnet_single = _setup()
    result_from_jacobian_contraction = empirical_ntk_jacobian_contraction(fnet_single, params, x_test, x_train)
    result_from_ntk_vps = empirical_ntk_ntk_vps(fnet_single, params, x_test, x_train)
    assert result_from_ntk_vps.shape == (3, 4, 10, 10)
    assert fw.allclose(result_from_jacobian_contraction, result_from_ntk_vps, atol=1e-5)
    for mode in ('trace', 'diagonal'):
        a = empirical_ntk_jacobian_contraction(fnet_single, params, x_test, x_train, mode)
        b = empirical_ntk_ntk_vps(fnet_single, params, x_test, x_train, mode)
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-4)


def test_ntk_matches_finite_difference_jacobians_in_float64():
    x_train, x_test, _, params, fnet_single = _setup(fw.float64)
    xs = list(x_test[:2]) + list(x_train[:2])
    jacs = [_jacobian(fnet_single, params, x) for x in xs]
    rng = np.random.default_rng(0)
    offsets = np.cumsum([0] + [p.numel() for p in params.values()])
    for k, name in enumerate(params):      # a few columns of each parameter, every sample
        for j in rng.choice(params[name].numel(), size=3, replace=False):
            for x, jac in zip(xs, jacs):
                np.testing.assert_allclose(jac[:, offsets[k] + j],
                                           _fd_column(fnet_single, params, x, name, j),
                                           rtol=1e-6, atol=1e-8)
    ntk = empirical_ntk_jacobian_contraction(fnet_single, params, x_test[:2], x_train[:2])
    ref = np.stack([np.stack([jacs[n] @ jacs[2 + m].T for m in range(2)]) for n in range(2)])
    np.testing.assert_allclose(ntk.numpy(), ref, rtol=1e-10, atol=1e-10)


def test_ntk_of_a_batch_with_itself_is_symmetric_positive_semidefinite():
    x_train, _, _, params, fnet_single = _setup(fw.float64)
    k = empirical_ntk_jacobian_contraction(fnet_single, params, x_train, x_train).numpy()
    flat = k.transpose(0, 2, 1, 3).reshape(40, 40)
    np.testing.assert_allclose(flat, flat.T, rtol=1e-10, atol=1e-10)
    assert np.linalg.eigvalsh(flat).min() > -1e-8


def test_vjp_and_jvp_take_parameter_dicts():
    """The tutorial's building blocks on their own: vjp returns a dict of cotangents, and
    jvp along that dict is J J^T v, as in NumPy from the Jacobian."""
    _, x_test, _, params, fnet_single = _setup(fw.float64)
    x = x_test[0]
    out, vjp_fn = vjp(lambda p: fnet_single(p, x), params)
    v = fw.randn(10, dtype=fw.float64)
    (cot,) = vjp_fn(v)
    assert isinstance(cot, dict) and list(cot) == list(params)
    J = _jacobian(fnet_single, params, x)
    flat = np.concatenate([cot[k].numpy().reshape(-1) for k in params])
    np.testing.assert_allclose(flat, J.T @ v.numpy(), rtol=1e-6, atol=1e-8)
    primal, tangent = jvp(lambda p: fnet_single(p, x), (params,), (cot,))
    np.testing.assert_allclose(primal.numpy(), out.numpy())
    np.testing.assert_allclose(tangent.numpy(), J @ (J.T @ v.numpy()), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="structure"):
        jvp(lambda p: fnet_single(p, x), (params,), ({"fc.bias": cot["fc.bias"]},))


def test_compiled_jacobian_contraction_matches_eager():
    x_train, x_test, _, params, fnet_single = _setup()
    ntk = fw.compile(lambda p, a, b: empirical_ntk_jacobian_contraction(fnet_single, p, a, b))
    for s in range(2):
        a, b = x_train * (1 + s), x_test
        np.testing.assert_allclose(
            ntk(params, a, b).numpy(),
            empirical_ntk_jacobian_contraction(fnet_single, params, a, b).numpy(),
            rtol=1e-4, atol=1e-5)
    st = ntk.stats()
    assert st["captures"] == 1 and st["num_recompiles"] == 0, st["recompiles"]
    assert not st["graph_breaks"], st["graph_breaks"]
