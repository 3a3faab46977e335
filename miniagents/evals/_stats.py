"""The few statistics of the reports: means, percentiles, and Student's t intervals.

A difference between two runs is given with a 95 % confidence interval (by default):

- **paired** (the runs' cases, matched by name): the mean of the per-case differences,
  ``d̄ ± t(n-1) · s / √n``;
- **unpaired** (one case's repetitions in each run): Welch's interval,
  ``x̄₂ - x̄₁ ± t(df) · √(s₁²/n₁ + s₂²/n₂)``, with Welch-Satterthwaite's ``df``.

No interval comes of fewer than two values a side (there is no spread to measure). The
t quantile is exact for 1 and 2 degrees of freedom, found by bisection of the
distribution function (the regularized incomplete beta function) between them and up to
30 (Welch's degrees of freedom are seldom whole: two repetitions a side give 1 to 2), and
Cornish-Fisher's expansion from 30 on (Abramowitz and Stegun 26.7.5, within 0.00001 of
the true value there, up to the 0.9995 quantile; at 3 degrees of freedom it was 0.004 off
the 0.975 quantile, 0.05 off the 0.995 one): no SciPy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

__all__ = ["mean", "paired_interval", "percentile", "t_quantile", "welch_interval"]


def mean(values: Sequence[float]) -> float | None:
    """The mean, or ``None`` for no values."""
    return sum(values) / len(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0 to 100), interpolated between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom."""
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    if 1 < df < _EXPANDED_FROM:  # the expansion is off here (at 3: 3.1786 for 3.1824)
        return _t_bisected(p, df)
    z = NormalDist().inv_cdf(p)
    z2 = z * z
    g1 = (z2 + 1) * z / 4
    g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
    g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
    g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


_EXPANDED_FROM = 30
"""The fewest degrees of freedom whose t quantile is Cornish-Fisher's expansion."""


def _t_bisected(p: float, df: float) -> float:
    """The ``p`` quantile of t with ``df`` from 1 to 30, by bisection of the distribution."""
    if p < 0.5:
        return -_t_bisected(1 - p, df)
    low, high = 0.0, t_quantile(p, 1)  # (the quantile falls as df grows)
    for _ in range(64):  # (2**-64 of the first bound: past a float's precision)
        middle = (low + high) / 2
        tail = _beta_regularized(df / (df + middle * middle), df / 2, 0.5) / 2  # P(T > middle)
        if 1 - tail < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _beta_regularized(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)``, by its continued fraction."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(x, a, b) / a
    return 1 - front * _beta_fraction(1 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of ``I_x(a, b)``, by Lentz's method."""
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 500):
        for term in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + term * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + term / c
            c = c if abs(c) > tiny else tiny
            fraction *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return fraction


def _variance(values: Sequence[float], center: float) -> float:
    return sum((value - center) ** 2 for value in values) / (len(values) - 1)


def paired_interval(
    differences: Sequence[float], confidence: float = 0.95
) -> tuple[float, float] | None:
    """The interval of the mean of paired ``differences`` (``None`` for fewer than two)."""
    n = len(differences)
    if n < 2:
        return None
    center = sum(differences) / n
    half = t_quantile(0.5 + confidence / 2, n - 1) * math.sqrt(_variance(differences, center) / n)
    return center - half, center + half


def welch_interval(
    before: Sequence[float], after: Sequence[float], confidence: float = 0.95
) -> tuple[float, float] | None:
    """Welch's interval of ``mean(after) - mean(before)`` (``None`` under two values a side)."""
    n1, n2 = len(before), len(after)
    if n1 < 2 or n2 < 2:
        return None
    m1, m2 = sum(before) / n1, sum(after) / n2
    a, b = _variance(before, m1) / n1, _variance(after, m2) / n2
    spread = a + b
    center = m2 - m1
    if spread == 0:  # no spread on either side: the difference is what it is
        return center, center
    df = spread**2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
    half = t_quantile(0.5 + confidence / 2, df) * math.sqrt(spread)
    return center - half, center + half
