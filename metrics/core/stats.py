"""Small statistics shared by the metric families.

``wilson_interval``
    The Wilson score interval of a binomial proportion (better than the normal
    "Wald" interval at small ``n`` or near 0 and 1).
``two_proportion_ztest``
    The pooled two-proportion z-test (two-sided), as used to compare two models.

Both are plain functions of counts, free of pandas, so any family can reuse them. The
arithmetic is statsmodels' (``proportion_confint(method="wilson")`` and ``proportions_ztest``,
imported on first use); this module adds the validation of the counts, the zero-denominator
and zero-variance cases and the exact 0/1 bounds at the extremes.
"""

from __future__ import annotations

import math

from metrics.errors import ConfigError

__all__ = ["wilson_interval", "two_proportion_ztest"]


def _check_counts(successes, n, *, what: str) -> None:
    for name, value in ((f"{what} successes", successes), (f"{what} n", n)):
        if isinstance(value, bool) or not float(value).is_integer() or value < 0:
            raise ConfigError(f"{name} must be a non-negative whole number, got {value!r}")
    if successes > n:
        raise ConfigError(f"{what} successes ({successes!r}) cannot exceed n ({n!r})")


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` for the proportion ``successes / n``.

    Definition, with ``p = successes / n`` and ``z`` the two-sided normal quantile of
    ``confidence`` (1.959964 for 95 %)::

        centre = (p + z**2 / (2 n)) / (1 + z**2 / n)
        half   = z / (1 + z**2 / n) * sqrt(p (1 - p) / n + z**2 / (4 n**2))
        (low, high) = (centre - half, centre + half), clipped to [0, 1]
        (exactly 0 when successes == 0, exactly 1 when successes == n)

    Zero denominator: ``n == 0`` gives ``(nan, nan)`` (no evidence either way).
    Raises :class:`~metrics.errors.ConfigError` when the counts are negative, not
    whole, ``successes > n``, or ``confidence`` is not strictly between 0 and 1.

    Examples
    --------
    >>> low, high = wilson_interval(8, 10)
    >>> round(low, 4), round(high, 4)
    (0.4902, 0.9433)
    >>> [round(v, 4) for v in wilson_interval(0, 10)]
    [0.0, 0.2775]
    >>> wilson_interval(0, 0)
    (nan, nan)
    """
    _check_counts(successes, n, what="wilson_interval")
    if not (0.0 < float(confidence) < 1.0):
        raise ConfigError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    if n == 0:
        return (math.nan, math.nan)
    from statsmodels.stats.proportion import proportion_confint

    low, high = (float(v) for v in proportion_confint(successes, n, alpha=1.0 - float(confidence),
                                                        method="wilson"))
    # At p = 0 or 1 the bound is exactly 0 or 1; rounding would otherwise leave 0.9999999999999999.
    low = 0.0 if successes == 0 else max(0.0, low)
    high = 1.0 if successes == n else min(1.0, high)
    return (low, high)


def two_proportion_ztest(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Pooled two-proportion z-test of ``x1/n1`` against ``x2/n2``; returns ``(z, p_value)``.

    Definition: ``p1 = x1/n1``, ``p2 = x2/n2``, pooled ``p = (x1 + x2) / (n1 + n2)``,
    ``se = sqrt(p (1 - p) (1/n1 + 1/n2))``, ``z = (p1 - p2) / se`` (positive when the first
    proportion is higher) and the two-sided ``p_value = 2 * (1 - Phi(|z|))``.

    Zero denominators: ``n1 == 0`` or ``n2 == 0`` gives ``(nan, nan)``. When ``se == 0``
    (both samples all successes or all failures) the proportions are equal and the result
    is ``(0.0, 1.0)``. Invalid counts raise :class:`~metrics.errors.ConfigError`.

    Examples
    --------
    >>> z, p = two_proportion_ztest(45, 50, 30, 50)
    >>> round(z, 4), round(p, 6)
    (3.4641, 0.000532)
    >>> two_proportion_ztest(5, 5, 7, 7)
    (0.0, 1.0)
    >>> two_proportion_ztest(1, 0, 1, 2)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    metrics.errors.ConfigError: ...
    >>> two_proportion_ztest(0, 0, 1, 2)
    (nan, nan)
    """
    _check_counts(x1, n1, what="first sample")
    _check_counts(x2, n2, what="second sample")
    if n1 == 0 or n2 == 0:
        return (math.nan, math.nan)
    if x1 + x2 in (0, n1 + n2):  # both samples all successes or all failures: se == 0, equal proportions
        return (0.0, 1.0)
    from statsmodels.stats.proportion import proportions_ztest

    z, p_value = proportions_ztest([x1, x2], [n1, n2], alternative="two-sided")
    return (float(z), min(1.0, float(p_value)))
