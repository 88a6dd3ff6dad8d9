"""genbench.stats: the shared statistics behave as their definitions say (exact values from
scipy/closed forms, and properties that must hold for every input)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genbench import stats as gs
from genbench.errors import ConfigError

counts = st.integers(1, 2_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))
levels = st.sampled_from([0.5, 0.9, 0.95, 0.99])


def test_clopper_pearson_known_value():
    lo, hi = gs.accuracy_interval(0.5, 100)
    assert lo == pytest.approx(0.3983, abs=1e-3) and hi == pytest.approx(0.6017, abs=1e-3)
    assert gs.error_interval(0, 100)[0] == 0.0 and gs.error_interval(100, 100)[1] == 1.0


@settings(max_examples=60, deadline=None)
@given(counts, levels)
def test_intervals_contain_the_estimate(kn, level):
    k, n = kn
    for method in ("exact", "wilson"):
        lo, hi = gs.proportion_interval(k, n, level, method=method)
        assert 0.0 <= lo <= k / n <= hi <= 1.0


@settings(max_examples=40, deadline=None)
@given(counts)
def test_interval_widens_with_level(kn):
    k, n = kn
    lo95, hi95 = gs.proportion_interval(k, n, 0.95)
    lo99, hi99 = gs.proportion_interval(k, n, 0.99)
    assert lo99 <= lo95 and hi95 <= hi99


def test_chance_interval_contains_chance_and_shrinks_with_n():
    lo, hi = gs.chance_interval(1_000)
    assert lo < 0.1 < hi
    lo2, hi2 = gs.chance_interval(200)
    assert hi2 - lo2 > hi - lo
    assert gs.chance_interval(1_000, p=0.5)[0] == pytest.approx(0.459, abs=0.002)


def test_binomial_floor_is_quantile():
    floor = gs.binomial_floor(0.95, 1_000)
    assert 0.93 < floor < 0.95
    assert gs.binomial_floor(0.95, 1_000, alpha=0.001) < floor


def test_difference_noise_matches_formula():
    assert gs.difference_noise(0.5, 1_000) == pytest.approx(1.96 * (0.5 / 1_000) ** 0.5)
    assert gs.difference_noise(1.0, 1_000) == 0.0


def test_shift_test_and_min_p():
    s = gs.shift_test([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])
    assert s.common_language == 1.0 and s.rank_biserial == 1.0
    assert s.p == pytest.approx(gs.min_mannwhitney_p(5, 5)) == pytest.approx(1 / 252)
    assert gs.shift_test([1, 2], [3, 4]).common_language == 0.0
    assert gs.common_language([1.0, 2.0], [1.0, 2.0]) == 0.5
    assert math.isnan(gs.common_language([], [1.0]))
    with pytest.raises(ConfigError, match="non-empty"):
        gs.shift_test([], [1.0])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=20),
       st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=20))
def test_common_language_is_antisymmetric(a, b):
    assert gs.common_language(a, b) + gs.common_language(b, a) == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["spearman", "kendall"])
def test_rank_correlation_monotone_and_constant(method):
    assert gs.rank_correlation([0, 1, 2, 3], [1, 5, 6, 100], method).rho == pytest.approx(1.0)
    assert gs.rank_correlation([0, 1, 2, 3], [4, 3, 2, 1], method).rho == pytest.approx(-1.0)
    const = gs.rank_correlation([0, 1, 2], [5, 5, 5], method)
    assert math.isnan(const.rho) and math.isnan(const.p)


def test_rank_correlation_rejects_bad_input():
    with pytest.raises(ConfigError, match="equal length"):
        gs.rank_correlation([1, 2], [1])
    with pytest.raises(ConfigError, match="spearman"):
        gs.rank_correlation([1, 2], [1, 2], "pearson")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=10, unique=True))
def test_rank_correlation_invariant_to_monotone_map(xs):
    ys = [x ** 3 + 2 * x for x in xs]  # strictly increasing map
    assert gs.rank_correlation(xs, ys).rho == pytest.approx(1.0)
    assert gs.rank_correlation(xs, ys, "kendall").rho == pytest.approx(1.0)


def test_seed_spread():
    s = gs.seed_spread([1.0, 2.0, 3.0])
    assert s.mean == 2.0 and s.std == pytest.approx(1.0) and (s.low, s.high) == (1.0, 3.0)
    assert s.band(3) == pytest.approx(3.0)
    with pytest.raises(ConfigError, match="2 seeds"):
        gs.seed_spread([1.0])


@pytest.mark.parametrize("call", [lambda: gs.proportion_interval(3, 2),
                                  lambda: gs.proportion_interval(0, 0),
                                  lambda: gs.accuracy_interval(1.5, 10),
                                  lambda: gs.chance_interval(100, level=1.0)])
def test_bad_inputs_name_the_problem(call):
    with pytest.raises(ConfigError):
        call()
