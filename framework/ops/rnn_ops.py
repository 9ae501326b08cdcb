"""Recurrent layer ops: ``lstm``, ``gru``, ``rnn`` -- one layer, one direction, a whole
sequence per op.

Each is a composite: its decomposition unrolls the cell over time with public ops (what
a backend or exporter without a native kernel sees), the CPU backend runs it as one NumPy
loop (``backends/cpu_rnn.py``), and an exporter can map it to ONNX's native LSTM/GRU/RNN.

Operands: ``x (T, N, I)``, ``h0 (N, H)`` (and ``c0 (N, H)`` for LSTM), ``w_ih (G*H, I)``,
``w_hh (G*H, H)``, then optionally ``b_ih, b_hh (G*H,)``. Outputs: ``y (T, N, H)`` (the
hidden state at every step, in time order), ``h_T`` (and ``c_T``). ``reverse=True`` runs
from the last step to the first. An LSTM with a projection (attribute ``proj=True``) takes
one more operand, last (PyTorch's flat-weight order), ``w_hr (P, H)``: then
``h_t = (o_t * tanh(c_t)) W_hr^T``, so ``h0``, ``y`` and ``h_T`` have size ``P`` and
``w_hh`` is ``(4*H, P)``; ``c0``/``c_T`` keep ``H``. Gate orders are PyTorch's (LSTM
i, f, g, o; GRU r, z, n with ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``).

The VJP rules are backpropagation through time written with public ops: everything that
does not depend on the incoming gradient is computed for all steps at once (the hidden
states come from the saved output ``y``), and only the gradient recursion loops over time.
"""

from __future__ import annotations

from ..errors import ArgumentError, DTypeError, ShapeError
from .linalg import matmul
from .movement import cat, chunk, stack
from .registry import COMPOSITE, apply, register

GATES = {"lstm": 4, "gru": 3, "rnn": 1}


# ---------------------------------------------------------------------------------------
# meta rules
def _check(name, x, states, w_ih, w_hh, biases, w_hr=None):
    ts = (x,) + tuple(states) + (w_ih, w_hh) + tuple(biases) + \
        (() if w_hr is None else (w_hr,))
    for t in ts:
        if not t.dtype.is_floating_point or t.dtype is not x.dtype:
            raise DTypeError(f"{name}: expected floating-point operands of one dtype, got "
                             f"{[a.dtype.name for a in ts]}")
    if len(biases) not in (0, 2):
        raise ArgumentError(f"{name}: expected both biases or none, got {len(biases)}")
    if x.ndim != 3:
        raise ShapeError(f"{name}: expected a (T, N, I) input, got shape {list(x.shape)}")
    t_len, n, i = x.shape
    g = GATES[name]
    # h: the gate width; r: the size of the recurrent state h (the projection's, if any)
    h = r = w_hh.shape[1] if w_hh.ndim == 2 else None
    if w_hr is not None and h is not None:
        h = w_hh.shape[0] // g
    want = {"w_ih": (g * h, i), "w_hh": (g * h, r), "bias": (g * h,), "state": (n, r),
            "cell": (n, h), "w_hr": (r, h)}
    named = [("w_ih", w_ih), ("w_hh", w_hh)] + [("bias", b) for b in biases] + \
        [("state", states[0])] + [("cell", c) for c in states[1:]] + \
        ([] if w_hr is None else [("w_hr", w_hr)])
    for what, t in named:
        if h is None or tuple(t.shape) != want[what]:
            raise ShapeError(f"{name}: {what} has shape {list(t.shape)}, expected "
                             f"{list(want[what]) if h is not None else '(G*H, H)'} for input "
                             f"{list(x.shape)} and w_hh {list(w_hh.shape)}")
    return (t_len, n, r), (n, r), (n, h)


def _split(rest, proj):
    """``(biases, w_hr)`` from the operands after ``w_hh``."""
    return (rest[:-1], rest[-1]) if proj else (rest, None)


def _lstm_meta(x, h0, c0, w_ih, w_hh, *rest, reverse, proj=False):
    biases, w_hr = _split(rest, proj)
    ys, hs, cs = _check("lstm", x, (h0, c0), w_ih, w_hh, biases, w_hr)
    return (ys, x.dtype), (hs, x.dtype), (cs, x.dtype)


def _gru_meta(x, h0, w_ih, w_hh, *biases, reverse):
    ys, hs, _ = _check("gru", x, (h0,), w_ih, w_hh, biases)
    return (ys, x.dtype), (hs, x.dtype)


def _rnn_meta(x, h0, w_ih, w_hh, *biases, nonlinearity, reverse):
    if nonlinearity not in ("tanh", "relu"):
        raise ArgumentError(f"rnn: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    ys, hs, _ = _check("rnn", x, (h0,), w_ih, w_hh, biases)
    return (ys, x.dtype), (hs, x.dtype)


# ---------------------------------------------------------------------------------------
# decompositions (the unrolled cells)
def _lin(x, w, b):
    out = matmul(x, w.t())
    return out if b is None else out + b


def _steps(t_len, reverse):
    return range(t_len - 1, -1, -1) if reverse else range(t_len)


def _in_order(outs, reverse):
    return stack(outs[::-1] if reverse else outs, 0)


def _biases(biases):
    return (biases[0], biases[1]) if biases else (None, None)


def _lstm_decomp(x, h0, c0, w_ih, w_hh, *rest, reverse, proj=False):
    biases, w_hr = _split(rest, proj)
    b_ih, b_hh = _biases(biases)
    xg = _lin(x, w_ih, b_ih)
    h, c, outs = h0, c0, []
    for t in _steps(x.shape[0], reverse):
        i, f, g, o = chunk(xg[t] + _lin(h, w_hh, b_hh), 4, -1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        if w_hr is not None:
            h = matmul(h, w_hr.t())
        outs.append(h)
    return _in_order(outs, reverse), h, c


def _gru_decomp(x, h0, w_ih, w_hh, *biases, reverse):
    b_ih, b_hh = _biases(biases)
    xg = _lin(x, w_ih, b_ih)
    h, outs = h0, []
    for t in _steps(x.shape[0], reverse):
        xr, xz, xn = chunk(xg[t], 3, -1)
        hr, hz, hn = chunk(_lin(h, w_hh, b_hh), 3, -1)
        r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
        n = (xn + r * hn).tanh()
        h = (1 - z) * n + z * h
        outs.append(h)
    return _in_order(outs, reverse), h


def _rnn_decomp(x, h0, w_ih, w_hh, *biases, nonlinearity, reverse):
    b_ih, b_hh = _biases(biases)
    xg = _lin(x, w_ih, b_ih)
    h, outs = h0, []
    for t in _steps(x.shape[0], reverse):
        pre = xg[t] + _lin(h, w_hh, b_hh)
        h = pre.tanh() if nonlinearity == "tanh" else pre.relu()
        outs.append(h)
    return _in_order(outs, reverse), h


# ---------------------------------------------------------------------------------------
# VJP rules (backpropagation through time)
def _previous_states(y, h0, reverse):
    """The state each step started from, in time order: (T, N, H)."""
    first = h0.unsqueeze(0)
    return cat([y[1:], first], 0) if reverse else cat([first, y[:-1]], 0)


def _param_grads(x, h_prev, dxg, dhg, w_ih, w_hh, has_bias):
    """Gradients of x and the weights from the gate-preactivation gradients of all steps."""
    t_len, n = x.shape[0], x.shape[1]
    gx = matmul(dxg, w_ih)
    flat_dxg = dxg.reshape(t_len * n, dxg.shape[2])
    flat_dhg = dhg.reshape(t_len * n, dhg.shape[2])
    gw_ih = matmul(flat_dxg.t(), x.reshape(t_len * n, x.shape[2]))
    gw_hh = matmul(flat_dhg.t(), h_prev.reshape(t_len * n, h_prev.shape[2]))
    biases = (flat_dxg.sum(0), flat_dhg.sum(0)) if has_bias else ()
    return gx, gw_ih, gw_hh, biases


def _lstm_vjp(grads, args, out, reverse, proj=False):
    gy, gh, gc = grads
    x, h0, c0, w_ih, w_hh, *rest = args
    biases, w_hr = _split(rest, proj)
    b_ih, b_hh = _biases(biases)
    y = out[0]
    h_prev = _previous_states(y, h0, reverse)
    gates = _lin(x, w_ih, b_ih) + _lin(h_prev, w_hh, b_hh)          # all steps at once
    ai, af, ag, ao = chunk(gates, 4, -1)
    i, f, g, o = ai.sigmoid(), af.sigmoid(), ag.tanh(), ao.sigmoid()
    c, cs = c0, [None] * x.shape[0]
    for t in _steps(x.shape[0], reverse):                           # cell states
        c = f[t] * c + i[t] * g[t]
        cs[t] = c
    c_all = stack(cs, 0)
    c_prev = _previous_states(c_all, c0, reverse)
    tc = c_all.tanh()
    # per-step factors that do not depend on the incoming gradient
    k_c = o * (1 - tc * tc)
    p_i, p_f, p_g = g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g)
    p_o = tc * o * (1 - o)
    dh, dc, das, dhs = gh, gc, [None] * x.shape[0], [None] * x.shape[0]
    for t in reversed(list(_steps(x.shape[0], reverse))):
        dh = dh + gy[t]
        if w_hr is not None:        # through h_t = m_t W_hr^T to m_t = o_t * tanh(c_t)
            dhs[t] = dh
            dh = matmul(dh, w_hr)
        dct = dc + dh * k_c[t]
        da = cat([dct * p_i[t], dct * p_f[t], dct * p_g[t], dh * p_o[t]], -1)
        das[t] = da
        dc = dct * f[t]
        dh = matmul(da, w_hh)
    da_all = stack(das, 0)
    gx, gw_ih, gw_hh, gb = _param_grads(x, h_prev, da_all, da_all, w_ih, w_hh, bool(biases))
    if w_hr is None:
        return (gx, dh, dc, gw_ih, gw_hh) + gb
    rows = x.shape[0] * x.shape[1]
    m = (o * tc).reshape(rows, tc.shape[2])
    gw_hr = matmul(stack(dhs, 0).reshape(rows, w_hr.shape[0]).t(), m)
    return (gx, dh, dc, gw_ih, gw_hh) + gb + (gw_hr,)


def _gru_vjp(grads, args, out, reverse):
    gy, gh = grads
    x, h0, w_ih, w_hh, *biases = args
    b_ih, b_hh = _biases(biases)
    y = out[0]
    h_prev = _previous_states(y, h0, reverse)
    xr, xz, xn = chunk(_lin(x, w_ih, b_ih), 3, -1)
    hr, hz, hn = chunk(_lin(h_prev, w_hh, b_hh), 3, -1)
    r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
    n = (xn + r * hn).tanh()
    q_n = (1 - z) * (1 - n * n)
    q_z = (h_prev - n) * z * (1 - z)
    q_r = hn * r * (1 - r)
    dh, dxs, dhs = gh, [None] * x.shape[0], [None] * x.shape[0]
    for t in reversed(list(_steps(x.shape[0], reverse))):
        dh = dh + gy[t]
        dan = dh * q_n[t]
        dar = dan * q_r[t]
        daz = dh * q_z[t]
        dxs[t] = cat([dar, daz, dan], -1)
        dhg = cat([dar, daz, dan * r[t]], -1)
        dhs[t] = dhg
        dh = dh * z[t] + matmul(dhg, w_hh)
    gx, gw_ih, gw_hh, gb = _param_grads(x, h_prev, stack(dxs, 0), stack(dhs, 0), w_ih, w_hh,
                                        bool(biases))
    return (gx, dh, gw_ih, gw_hh) + gb


def _rnn_vjp(grads, args, out, nonlinearity, reverse):
    gy, gh = grads
    x, h0, w_ih, w_hh, *biases = args
    y = out[0]
    h_prev = _previous_states(y, h0, reverse)
    deriv = 1 - y * y if nonlinearity == "tanh" else (y > 0).to(y.dtype)
    dh, das = gh, [None] * x.shape[0]
    for t in reversed(list(_steps(x.shape[0], reverse))):
        da = (dh + gy[t]) * deriv[t]
        das[t] = da
        dh = matmul(da, w_hh)
    da_all = stack(das, 0)
    gx, gw_ih, gw_hh, gb = _param_grads(x, h_prev, da_all, da_all, w_ih, w_hh, bool(biases))
    return (gx, dh, gw_ih, gw_hh) + gb


LSTM = register("lstm", COMPOSITE, _lstm_meta, vjp=_lstm_vjp, decomp=_lstm_decomp,
                num_outputs=3, saves_output=True)
GRU = register("gru", COMPOSITE, _gru_meta, vjp=_gru_vjp, decomp=_gru_decomp, num_outputs=2,
               saves_output=True)
RNN = register("rnn", COMPOSITE, _rnn_meta, vjp=_rnn_vjp, decomp=_rnn_decomp, num_outputs=2,
               saves_output=True)


# ---------------------------------------------------------------------------------------
def _bias_args(b_ih, b_hh, name):
    if (b_ih is None) != (b_hh is None):
        raise ArgumentError(f"{name}: pass both b_ih and b_hh, or neither")
    return () if b_ih is None else (b_ih, b_hh)


def lstm(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None, *, reverse=False):
    """One LSTM layer/direction over ``x (T, N, I)``: returns ``(y, h_T, c_T)``.
    ``w_hr (P, H)`` projects the hidden state (PyTorch's ``proj_size``)."""
    biases = _bias_args(b_ih, b_hh, "lstm")
    if w_hr is None:    # no ``proj`` attribute: unprojected graphs read as before
        return apply(LSTM, x, h0, c0, w_ih, w_hh, *biases, reverse=bool(reverse))
    return apply(LSTM, x, h0, c0, w_ih, w_hh, *biases, w_hr, reverse=bool(reverse),
                 proj=True)


def gru(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, reverse=False):
    """One GRU layer/direction over ``x (T, N, I)``: returns ``(y, h_T)``."""
    return apply(GRU, x, h0, w_ih, w_hh, *_bias_args(b_ih, b_hh, "gru"),
                 reverse=bool(reverse))


def rnn(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, nonlinearity="tanh", reverse=False):
    """One Elman RNN layer/direction over ``x (T, N, I)``: returns ``(y, h_T)``."""
    return apply(RNN, x, h0, w_ih, w_hh, *_bias_args(b_ih, b_hh, "rnn"),
                 nonlinearity=nonlinearity, reverse=bool(reverse))
