"""Bootstrap intervals cover a known mean at about the nominal rate; IQM and the gap on known data."""
from __future__ import annotations

import numpy as np

from sim2real.evaluation.stats import bootstrap_ci, gap_ci, iqm


def test_bootstrap_covers_the_true_mean_at_the_nominal_rate():
    rng = np.random.default_rng(0)
    trials, covered = 400, 0
    for _ in range(trials):
        sample = rng.normal(2.0, 1.0, size=40)
        est = bootstrap_ci(sample, rng, n_boot=1000)
        covered += est.low <= 2.0 <= est.high
    rate = covered / trials
    assert 0.90 <= rate <= 0.98, rate  # percentile bootstrap at n=40 runs a little below 95 %


def test_bootstrap_of_success_flags_covers_the_true_rate():
    rng = np.random.default_rng(1)
    trials, hits = 300, 0
    for _ in range(trials):
        est = bootstrap_ci((rng.random(60) < 0.7).astype(float), rng, n_boot=800)
        hits += est.low <= 0.7 <= est.high
    assert 0.88 <= hits / trials <= 0.98


def test_gap_interval_covers_the_true_difference():
    rng = np.random.default_rng(2)
    trials, hits = 300, 0
    for _ in range(trials):
        est = gap_ci(rng.normal(1.0, 1.0, 50), rng.normal(0.4, 1.0, 50), rng, n_boot=800)
        hits += est.low <= 0.6 <= est.high
    assert 0.90 <= hits / trials <= 0.98


def test_iqm_ignores_the_outer_quartiles():
    assert iqm([0, 1, 2, 3, 4, 5, 6, 100]) == np.mean([2, 3, 4, 5])
    est = bootstrap_ci([1.0, 2.0, 3.0, 4.0], np.random.default_rng(0), statistic=iqm, n_boot=200)
    assert est.value == 2.5 and est.low <= est.value <= est.high


def test_wilson_interval_matches_published_figures():
    from sim2real.evaluation.stats import wilson_ci

    full = wilson_ci(30, 30)
    assert full.value == 1.0 and round(full.low, 3) == 0.886 and full.high == 1.0  # never "[100, 100]"
    none = wilson_ci(0, 30)
    assert none.low == 0.0 and round(none.high, 3) == 0.114
    newcombe = wilson_ci(81, 263)  # Newcombe (1998), Stat. Med. 17:857, example (b): 0.2553 to 0.3662
    assert (round(newcombe.low, 4), round(newcombe.high, 4)) == (0.2553, 0.3662)


def test_wilson_interval_covers_the_true_rate_at_small_n():
    from sim2real.evaluation.stats import wilson_ci

    rng = np.random.default_rng(3)
    hits = sum(est.low <= 0.9 <= est.high for est in (wilson_ci(int((rng.random(20) < 0.9).sum()), 20)
                                                       for _ in range(2000)))
    assert 0.92 <= hits / 2000 <= 0.99  # the percentile bootstrap covers ~0.88 here


def test_success_rate_gap_matches_newcombe():
    from sim2real.evaluation.stats import rate_gap_ci

    est = rate_gap_ci([1] * 56 + [0] * 14, [1] * 48 + [0] * 32)  # Newcombe (1998) method 10: 0.0524 to 0.3339
    assert round(est.value, 3) == 0.2 and (round(est.low, 4), round(est.high, 4)) == (0.0524, 0.3339)
    same = rate_gap_ci(np.ones(30), np.ones(30))
    assert same.value == 0.0 and same.low < -0.1 and same.high > 0.1
