"""When a change of a time counts: larger than a factor *and* significant (Mann-Whitney U, as asv
decides), with a bootstrap confidence interval of the ratio of medians."""
from dataclasses import dataclass
from math import comb

import numpy as np

from harness.regress.defaults import ALPHA, FACTOR

CONFIDENCE = 0.95
RESAMPLES = 2000


def min_repetitions(alpha: float = ALPHA) -> int:
    """The fewest repetitions a side at which the two-sided exact test can reach `alpha` at all
    (7 at p = 0.002): below them no difference is significant, however large."""
    n = 2
    while 2 / comb(2 * n, n) > alpha:
        n += 1
    return n


@dataclass(frozen=True)
class TimeVerdict:
    mark: str                 # better, worse, not significant, too few samples
    ratio: float              # median(new) / median(base)
    low: float | None         # its confidence interval
    high: float | None
    p: float | None


def time_verdict(base, new, factor: float = FACTOR, alpha: float = ALPHA) -> TimeVerdict:
    from scipy import stats  # (a second to import: only when times are compared)
    base, new = np.asarray(base, float), np.asarray(new, float)
    ratio = float(np.median(new) / np.median(base))
    if 2 / comb(len(base) + len(new), len(base)) > alpha:
        return TimeVerdict("too few samples", ratio, None, None, None)
    p = float(stats.mannwhitneyu(base, new, alternative="two-sided", method="auto").pvalue)
    ci = stats.bootstrap((base, new), lambda b, n, axis: np.median(n, axis=axis) / np.median(b, axis=axis),
                         vectorized=True, n_resamples=RESAMPLES, confidence_level=CONFIDENCE, method="percentile",
                         rng=np.random.default_rng(0)).confidence_interval
    mark = "not significant"
    if p < alpha and ratio > factor:
        mark = "worse"
    elif p < alpha and ratio < 1 / factor:
        mark = "better"
    return TimeVerdict(mark, ratio, float(ci.low), float(ci.high), p)
