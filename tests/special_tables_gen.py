"""Regenerate ``framework/backends/special_tables.py`` (the coefficient tables of the
special functions in ``special_gamma.py`` and ``special_bessel.py``) with mpmath:

    .venv/bin/python tests/special_tables_gen.py > framework/backends/special_tables.py

* Temme's uniform asymptotic expansion of the incomplete gamma function (DLMF 8.12.3/4):
  Taylor coefficients in eta of C_k(eta), from C_0 = 1/(lambda - 1) - 1/eta and
  C_k = (1/eta) C_{k-1}'(eta) + (-1)^k g_k / (lambda - 1) (g_k: Stirling's coefficients of
  Gamma*), with lambda(eta) the power series inverting eta^2/2 = lambda - 1 - log(lambda).
  Orders k < 14, truncated where the tail is below 1e-17 for a >= 15 and |eta| <= 1.
* lgamma(1 + a) for small |a|: its Taylor series (-gamma, zeta(k) / k), 30 terms.
* Chebyshev fits (interpolation at Chebyshev nodes, 40 digits, truncated below 1e-18):
  J0(x) and J1(x)/x on [0, 8] in y = 2 (x/8)^2 - 1; Hankel's P_n(x), x Q_n(x) on x >= 8 in
  y = 2 (8/x)^2 - 1 (J_n = sqrt(2/(pi x)) (P_n cos(chi) - Q_n sin(chi)), chi = x - (2n+1)pi/4);
  Ai(x) on [-5, 2.5]; for x > 2.5, F = 2 sqrt(pi) x^(1/4) exp(zeta) Ai(x) and for x < -5,
  f and zeta * g of Ai(-y) = (sin(zeta + pi/4) f - cos(zeta + pi/4) g) / (sqrt(pi) y^(1/4)),
  all in y = 2 zeta_0 / zeta - 1 with zeta = 2/3 |x|^(3/2).
* Bessel Y0, Y1 (``special_bessel_more.py``) on [0, 8] in y = 2 (x/8)^2 - 1, their smooth
  parts Y0(x) - 2/pi log(x) J0(x) and (Y1(x) - 2/pi (log(x) J1(x) - 1/x)) / x (beyond 8 they
  reuse Hankel's P_n, Q_n above).
* Modified Bessel K0, K1: on [0, 2] in y = x^2/2 - 1 the smooth parts K0(x) + log(x/2) I0(x)
  and x (K1(x) - log(x/2) I1(x)); on [2, inf) sqrt(x) e^x K_n(x) in y = 4/x - 1.
"""

from __future__ import annotations

import mpmath as mp

_TAIL, _A0, _ETA0 = mp.mpf("1e-17"), 15, 1


# -- power series helpers (lists of mpf, lowest order first) ------------------------------
def _mul(a, b):
    n = min(len(a), len(b))
    return [mp.fsum(a[i] * b[k - i] for i in range(k + 1)) for k in range(n)]


def _inv(a):
    r = [1 / a[0]]
    for k in range(1, len(a)):
        r.append(-mp.fsum(a[i] * r[k - i] for i in range(1, k + 1)) / a[0])
    return r


def _sqrt(a):
    r = [mp.sqrt(a[0])]
    for k in range(1, len(a)):
        r.append((a[k] - mp.fsum(r[i] * r[k - i] for i in range(1, k))) / (2 * r[0]))
    return r


def _compose(a, b):
    """a(b(eta)) for b[0] == 0."""
    m = len(a)
    res, p = [mp.mpf(0)] * m, [mp.mpf(1)] + [mp.mpf(0)] * (m - 1)
    for k in range(m):
        for i in range(m):
            res[i] += a[k] * p[i]
        p = _mul(p, b)
    return res


def _exp(a):
    r = [mp.mpf(1)] + [mp.mpf(0)] * (len(a) - 1)
    for k in range(1, len(a)):
        r[k] = mp.fsum(i * a[i] * r[k - i] for i in range(1, k + 1)) / k
    return r


def temme_coefficients(m=80, kmax=20):
    """Taylor coefficients (lowest first) of C_0 .. C_{kmax-1}."""
    with mp.workdps(130):
        # eta = mu * sqrt(h(mu)), h = 2 (mu - log(1 + mu)) / mu^2; invert for mu = lambda - 1
        sh = _sqrt([mp.mpf(2) * (-1) ** k / (k + 2) for k in range(m)])
        mu = [mp.mpf(0), mp.mpf(1)] + [mp.mpf(0)] * (m - 2)
        for _ in range(m):
            mu = [mp.mpf(0)] + _inv(_compose(sh, mu))[:m - 1]
        inv_mu = _inv(mu[1:] + [mp.mpf(0)])  # eta / mu
        logg = [mp.mpf(0)] * 32
        for j in range(1, 17):
            logg[2 * j - 1] = mp.bernoulli(2 * j) / (2 * j * (2 * j - 1))
        g = _exp(logg)
        cur = inv_mu[:]
        cur[0] -= 1
        rows = [cur[1:]]
        for k in range(1, kmax):
            cur = rows[-1]
            d = [i * cur[i] for i in range(len(cur))]
            comb = [d[i] + ((-1) ** k * g[k] * inv_mu[i - 1] if 1 <= i <= len(inv_mu) else 0)
                    for i in range(len(d))]
            rows.append(comb[2:])
        return rows


def temme_table():
    out = []
    for k, row in enumerate(temme_coefficients()):
        scale = mp.mpf(_A0) ** -k
        if mp.fsum(abs(c) for c in row) * scale < _TAIL:
            break
        n = len(row)
        while n > 1 and mp.fsum(abs(c) for c in row[n - 1:]) * scale < _TAIL:
            n -= 1
        out.append(row[:n])
    return out


# -- Chebyshev fits -----------------------------------------------------------------------
def cheb(f, m=70, tol=mp.mpf("1e-18")):
    """Chebyshev coefficients a_j (f = a_0/2 + sum a_j T_j(y) on [-1, 1]), truncated."""
    with mp.workdps(40):
        th = [mp.pi * (k + mp.mpf(1) / 2) / m for k in range(m)]
        vals = [f(mp.cos(t)) for t in th]
        c = [2 * mp.fsum(v * mp.cos(j * t) for v, t in zip(vals, th)) / m for j in range(m)]
    n = m
    while n > 1 and abs(c[n - 1]) < tol:
        n -= 1
    return c[:n]


def _hankel_pq(n, x):
    chi = x - (2 * n + 1) * mp.pi / 4
    j, y = mp.besselj(n, x), mp.bessely(n, x)
    s = mp.sqrt(mp.pi * x / 2)
    return s * (j * mp.cos(chi) + y * mp.sin(chi)), s * (-j * mp.sin(chi) + y * mp.cos(chi))


BESSEL_X0 = 8
AIRY_L, AIRY_R = -5, mp.mpf("2.5")


def bessel_tables():
    x0 = mp.mpf(BESSEL_X0)

    def small(y):
        return x0 * mp.sqrt((y + 1) / 2)

    def large(y):
        return x0 / mp.sqrt((y + 1) / 2)
    return {
        "J0_SMALL": cheb(lambda y: mp.besselj(0, small(y))),
        "J1_SMALL": cheb(lambda y: mp.besselj(1, small(y)) / small(y)),
        "P0": cheb(lambda y: _hankel_pq(0, large(y))[0]),
        "Q0": cheb(lambda y: _hankel_pq(0, large(y))[1] * large(y)),
        "P1": cheb(lambda y: _hankel_pq(1, large(y))[0]),
        "Q1": cheb(lambda y: _hankel_pq(1, large(y))[1] * large(y)),
    }


def airy_tables():
    lo, hi = mp.mpf(AIRY_L), AIRY_R
    zr, zl = 2 * hi ** 1.5 / 3, 2 * (-lo) ** 1.5 / 3

    def x_of(z):
        return (3 * z / 2) ** (mp.mpf(2) / 3)

    def pos(y):
        z = zr * 2 / (y + 1)
        x = x_of(z)
        return mp.airyai(x) * 2 * mp.sqrt(mp.pi) * x ** 0.25 * mp.exp(z)

    def neg(y, which):
        z = zl * 2 / (y + 1)
        x = x_of(z)
        ph = z + mp.pi / 4
        a, b = mp.airyai(-x), mp.airybi(-x)
        s = mp.sqrt(mp.pi) * x ** 0.25
        if which == "f":
            return s * (a * mp.sin(ph) + b * mp.cos(ph))
        return s * (-a * mp.cos(ph) + b * mp.sin(ph)) * z
    return {
        "AI_MID": cheb(lambda y: mp.airyai(lo + (hi - lo) * (y + 1) / 2)),
        "AI_POS": cheb(pos),
        "AI_NEG_F": cheb(lambda y: neg(y, "f")),
        "AI_NEG_G": cheb(lambda y: neg(y, "g")),
    }


def bessel_more_tables():
    x0 = mp.mpf(BESSEL_X0)

    def small(y):
        return x0 * mp.sqrt((y + 1) / 2)

    def y0_part(x):
        return mp.bessely(0, x) - 2 / mp.pi * mp.log(x) * mp.besselj(0, x)

    def y1_part(x):
        return (mp.bessely(1, x) - 2 / mp.pi * (mp.log(x) * mp.besselj(1, x) - 1 / x)) / x

    def k_small(y):
        return mp.sqrt(2 * (y + 1))

    def k_large(y):
        return 4 / (y + 1)

    return {
        "Y0_SMALL": cheb(lambda y: y0_part(small(y))),
        "Y1_SMALL": cheb(lambda y: y1_part(small(y))),
        "K0_SMALL": cheb(lambda y: mp.besselk(0, k_small(y))
                         + mp.log(k_small(y) / 2) * mp.besseli(0, k_small(y))),
        "K1_SMALL": cheb(lambda y: k_small(y) * (mp.besselk(1, k_small(y)) - mp.log(
            k_small(y) / 2) * mp.besseli(1, k_small(y)))),
        "K0_LARGE": cheb(lambda y: mp.sqrt(k_large(y)) * mp.exp(k_large(y))
                         * mp.besselk(0, k_large(y)), m=90),
        "K1_LARGE": cheb(lambda y: mp.sqrt(k_large(y)) * mp.exp(k_large(y))
                         * mp.besselk(1, k_large(y)), m=90),
    }


def lgamma1p_taylor(n=30):
    """Coefficients of lgamma(1 + a) = sum_k c_k a^k, k = 1 .. n (c_1 = -Euler's gamma,
    c_k = (-1)^k zeta(k) / k)."""
    with mp.workdps(40):
        return [-mp.euler] + [(-1) ** k * mp.zeta(k) / k for k in range(2, n + 1)]


def _lines(values, indent):
    lines, cur = [], indent
    for v in values:
        piece = repr(float(v)) + ", "
        if len(cur) + len(piece) > 92:
            lines.append(cur.rstrip())
            cur = indent
        cur += piece
    lines.append(cur.rstrip())
    return "\n".join(lines)


def _fmt(name, values):
    return f"{name} = (\n{_lines(values, '    ')}\n)"


def main():
    print('"""Coefficient tables of ``special_gamma.py``, ``special_bessel.py`` and')
    print("``special_bessel_more.py``, generated by ``tests/special_tables_gen.py`` (mpmath;")
    print("see its docstring for what each one is). Chebyshev series are stored highest degree")
    print("first, as ``special_math._chbevl`` reads them; Temme rows lowest power of eta")
    print('first."""\n')
    print(f"TEMME_A0 = {_A0}  # the expansion is used for a >= TEMME_A0, |eta| <= 1")
    print("TEMME = (")
    for row in temme_table():
        print(f"    (\n{_lines(row, '        ')}\n    ),")
    print(")")
    print(_fmt("LGAMMA1P", list(reversed(lgamma1p_taylor()))) + "  # highest power first")
    print(f"BESSEL_X0 = {BESSEL_X0}.0")
    for name, c in bessel_tables().items():
        print(_fmt(name, list(reversed(c))))
    print(f"AIRY_L, AIRY_R = {float(AIRY_L)}, {float(AIRY_R)}")
    for name, c in airy_tables().items():
        print(_fmt(name, list(reversed(c))))
    for name, c in bessel_more_tables().items():
        print(_fmt(name, list(reversed(c))))


if __name__ == "__main__":
    main()
