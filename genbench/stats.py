"""The statistics every claim uses, in one place (scipy.stats underneath).

A claim's bound must come from a stated source: a paper number, the binomial noise of a finite
test set, or a measured seed-to-seed spread. This module holds the second and the comparison
tests, so that every claim computes "chance", "the interval of an accuracy", "the smallest gap a
test set resolves", "does A tend to exceed B" and "does y rise with x" the same way:

- :func:`proportion_interval` / :func:`accuracy_interval` / :func:`error_interval`: exact
  Clopper-Pearson (or Wilson) interval of a rate measured as k successes out of n.
- :func:`chance_interval`: where random guessing's accuracy on n images lies (binomial quantiles).
- :func:`binomial_floor`: the lowest accuracy not significantly below a true accuracy.
- :func:`difference_noise`: z standard errors of the difference of two independent accuracies.
- :func:`shift_test` / :func:`min_mannwhitney_p` / :func:`common_language`: Mann-Whitney U.
- :func:`rank_correlation`: Spearman or Kendall rank correlation with its p-value.
- :func:`seed_spread`: the spread of a measurement over seeds, for bounds set from measured noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from scipy import stats

from genbench.errors import ConfigError

__all__ = [
    "CIFAR10_CHANCE",
    "RankCorrelation",
    "SeedSpread",
    "Shift",
    "accuracy_interval",
    "binomial_floor",
    "chance_interval",
    "common_language",
    "difference_noise",
    "error_interval",
    "min_mannwhitney_p",
    "proportion_interval",
    "rank_correlation",
    "seed_spread",
    "shift_test",
]

CIFAR10_CHANCE = 0.1  # ten balanced classes

Method = Literal["exact", "wilson"]


def _check_counts(k: int, n: int) -> None:
    if n <= 0:
        raise ConfigError(f"a proportion needs n >= 1 trials, got n={n}")
    if not 0 <= k <= n:
        raise ConfigError(f"successes must lie in [0, n={n}], got {k}")


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ConfigError(f"a confidence level lies strictly between 0 and 1, got {level}")


# ------------------------------------------------------------------------ binomial intervals

def proportion_interval(k: int, n: int, level: float = 0.95,
                        method: Method = "exact") -> tuple[float, float]:
    """Two-sided ``level`` interval of a rate measured as ``k`` out of ``n``.

    ``exact`` is Clopper-Pearson (never undercovers, the default for a claim's verdict);
    ``wilson`` is the score interval (shorter, close to nominal coverage)."""
    _check_counts(int(k), int(n))
    _check_level(level)
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method=method)
    return float(ci.low), float(ci.high)


def accuracy_interval(acc: float, n: int, level: float = 0.95,
                      method: Method = "exact") -> tuple[float, float]:
    """Interval of an accuracy ``acc`` measured on ``n`` test images (k = round(acc * n))."""
    if not 0.0 <= acc <= 1.0:
        raise ConfigError(f"an accuracy lies in [0, 1], got {acc}")
    return proportion_interval(round(acc * n), n, level, method)


def error_interval(errors: int, n: int, confidence: float = 0.95,
                   method: Method = "exact") -> tuple[float, float]:
    """Interval of a test error rate measured as ``errors`` out of ``n``."""
    return proportion_interval(errors, n, confidence, method)


def chance_interval(n: int, level: float = 0.99,
                    p: float = CIFAR10_CHANCE) -> tuple[float, float]:
    """Where the accuracy of random guessing (true rate ``p``) on ``n`` test images lies with
    probability at least ``level``: the binomial quantiles over n."""
    _check_counts(0, n)
    _check_level(level)
    lo, hi = stats.binom.interval(level, n, p)
    return float(lo / n), float(hi / n)


def binomial_floor(target: float, n: int, alpha: float = 0.025) -> float:
    """The lowest accuracy on ``n`` samples not significantly (one-sided ``alpha``) below a
    true accuracy of ``target``: the binomial ``alpha`` quantile over n."""
    _check_counts(0, n)
    _check_level(alpha)
    return float(stats.binom.ppf(alpha, n, target) / n)


def difference_noise(acc: float, n: int, z: float = 1.96) -> float:
    """``z`` standard errors of the difference of two accuracies near ``acc``, each measured
    independently on ``n`` images: the smallest gap the test set can resolve."""
    _check_counts(0, n)
    return float(z * math.sqrt(2 * acc * (1 - acc) / n))


# ------------------------------------------------------------------------------ Mann-Whitney

@dataclass(frozen=True)
class Shift:
    """One-sided Mann-Whitney U test of "``larger`` tends to exceed ``smaller``"."""

    u: float
    p: float
    common_language: float  # P(a larger-group value > a smaller-group value), ties half
    rank_biserial: float  # 2 * common_language - 1


def shift_test(larger: Sequence[float], smaller: Sequence[float]) -> Shift:
    """Mann-Whitney U of ``larger`` against ``smaller``, alternative "greater"."""
    if len(larger) == 0 or len(smaller) == 0:
        raise ConfigError("a Mann-Whitney test needs two non-empty groups, "
                          f"got sizes {len(larger)} and {len(smaller)}")
    result = stats.mannwhitneyu(larger, smaller, alternative="greater")
    cl = float(result.statistic) / (len(larger) * len(smaller))
    return Shift(float(result.statistic), float(result.pvalue), cl, 2 * cl - 1)


def common_language(larger: Sequence[float], smaller: Sequence[float]) -> float:
    """P(a ``larger``-group value > a ``smaller``-group value), ties counting 1/2: the
    Mann-Whitney U over n*m, i.e. the AUROC of telling the groups apart. NaN if one is empty."""
    if len(larger) == 0 or len(smaller) == 0:
        return math.nan
    u = stats.mannwhitneyu(larger, smaller, alternative="two-sided").statistic
    return float(u) / (len(larger) * len(smaller))


def min_mannwhitney_p(n: int, m: int) -> float:
    """The smallest one-sided exact Mann-Whitney p-value with groups of n and m (no ties):
    1 / C(n+m, n). R = 5 per group gives 1/252 ~ 0.004, the least R for which p < 0.01 can
    be reached at all."""
    return 1.0 / math.comb(n + m, n)


# ---------------------------------------------------------------------------- rank correlation

@dataclass(frozen=True)
class RankCorrelation:
    """A rank correlation coefficient with its two-sided p-value (NaN for constant input)."""

    method: str
    rho: float
    p: float


def rank_correlation(x: Sequence[float], y: Sequence[float],
                     method: Literal["spearman", "kendall"] = "spearman") -> RankCorrelation:
    """Spearman's rho or Kendall's tau-b of y against x. Constant input gives NaN (scipy's
    warning is not raised: a constant series has no ranking, which the caller must handle)."""
    if len(x) != len(y) or len(x) < 2:
        raise ConfigError(f"rank correlation needs two series of equal length >= 2, "
                          f"got {len(x)} and {len(y)}")
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return RankCorrelation(method, math.nan, math.nan)
    if method == "spearman":
        r = stats.spearmanr(xa, ya)
    elif method == "kendall":
        r = stats.kendalltau(xa, ya)
    else:
        raise ConfigError(f"rank correlation method must be 'spearman' or 'kendall', got {method!r}")
    return RankCorrelation(method, float(r.statistic), float(r.pvalue))


# --------------------------------------------------------------------------- seed-to-seed spread

@dataclass(frozen=True)
class SeedSpread:
    """A measurement repeated over seeds: its mean, sample standard deviation and range."""

    values: tuple[float, ...]
    mean: float
    std: float
    low: float
    high: float

    def band(self, k: float = 3.0) -> float:
        """``k`` standard deviations: a bound set from measured noise (k stated by the caller)."""
        return k * self.std


def seed_spread(values: Sequence[float]) -> SeedSpread:
    """Spread of ``values`` measured on different seeds (needs at least 2)."""
    if len(values) < 2:
        raise ConfigError(f"a seed-to-seed spread needs >= 2 seeds, got {len(values)}")
    a = np.asarray(values, float)
    return SeedSpread(tuple(float(v) for v in a), float(a.mean()), float(a.std(ddof=1)),
                      float(a.min()), float(a.max()))
