"""Paired comparisons of two models evaluated on the same units (users or test rows).

Two statistics, both for ``B - A`` and pooled over seeds as the mean of per-seed deltas (each
seed is its own split, so units are only paired within a seed):

- ``mean``: per-unit values (e.g. per-user NDCG@10). 95% CI: percentile bootstrap that
  resamples units within each seed; p-value: two-sided paired randomisation test (random
  sign flips of the per-unit differences), the usual significance test for IR metrics
  (Smucker, Allan & Carterette, CIKM 2007).
- ``auc``: per-row labels and two models' probabilities. CI: the same stratified bootstrap,
  recomputing both AUCs on each resample; p-value: DeLong's test for two correlated AUCs
  (DeLong et al., Biometrics 1988; fast form of Sun & Xu, 2014), seeds combined by summing the
  deltas and their variances (a z-test).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class PairedDelta:
    """``delta`` = statistic(B) - statistic(A); ``low``/``high``: its bootstrap CI."""

    delta: float
    low: float
    high: float
    p_value: float
    confidence: float
    n_units: int
    n_seeds: int
    test: str

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _check(n_boot: int, confidence: float) -> None:
    if n_boot < 10:
        raise ValueError(f"n_boot must be >= 10, got {n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def paired_mean_delta(a: Sequence[np.ndarray], b: Sequence[np.ndarray], *, n_boot: int = 2000,
                      confidence: float = 0.95, seed: int = 0) -> PairedDelta:
    """Mean of ``b - a`` per unit; ``a[s]``/``b[s]``: values of seed ``s``, aligned by unit."""
    _check(n_boot, confidence)
    diffs = [np.asarray(y, dtype=np.float64) - np.asarray(x, dtype=np.float64)
             for x, y in zip(a, b, strict=True)]
    if not diffs or any(d.size == 0 for d in diffs):
        raise ValueError("paired_mean_delta needs at least one unit per seed")
    rng = np.random.default_rng(seed)
    delta = float(np.mean([d.mean() for d in diffs]))
    boot = np.zeros(n_boot)
    flips = np.zeros(n_boot)
    for d in diffs:  # per seed: (n_boot, n) draws, in chunks to bound memory
        for start in range(0, n_boot, 256):
            stop = min(start + 256, n_boot)
            rows = rng.integers(0, d.size, size=(stop - start, d.size))
            boot[start:stop] += d[rows].mean(axis=1)
            signs = rng.choice((-1.0, 1.0), size=(stop - start, d.size))
            flips[start:stop] += (signs * d).mean(axis=1)
    boot /= len(diffs)
    flips /= len(diffs)
    # +1 in numerator and denominator: the observed assignment is one of the permutations
    p_value = (1 + np.sum(np.abs(flips) >= abs(delta) - 1e-12)) / (n_boot + 1)
    low, high = _interval(boot, confidence)
    return PairedDelta(delta, low, high, float(min(p_value, 1.0)), confidence,
                       int(sum(d.size for d in diffs)), len(diffs), "randomisation")


def _midranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x)


def delong(labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """``(auc_a, auc_b, variance of auc_b - auc_a)`` by DeLong's method."""
    y = np.asarray(labels) > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos < 2 or n_neg < 2:
        raise ValueError("DeLong's test needs at least two positive and two negative rows")
    aucs, v10, v01 = [], [], []
    for scores in (np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)):
        pos, neg = scores[y], scores[~y]
        all_ranks = _midranks(np.concatenate([pos, neg]))
        pos_ranks, neg_ranks = _midranks(pos), _midranks(neg)
        # structural components: per positive, the share of negatives it beats (and v.v.)
        v10.append((all_ranks[:n_pos] - pos_ranks) / n_neg)
        v01.append(1.0 - (all_ranks[n_pos:] - neg_ranks) / n_pos)
        aucs.append(float(v10[-1].mean()))
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    contrast = np.array([-1.0, 1.0])
    variance = float(contrast @ s10 @ contrast / n_pos + contrast @ s01 @ contrast / n_neg)
    return aucs[0], aucs[1], max(variance, 0.0)


def paired_auc_delta(labels: Sequence[np.ndarray], a: Sequence[np.ndarray],
                     b: Sequence[np.ndarray], *, n_boot: int = 1000, confidence: float = 0.95,
                     seed: int = 0) -> PairedDelta:
    """AUC(b) - AUC(a) on the same rows; one array per seed in each argument."""
    from fusionrec.metrics import auc_score

    _check(n_boot, confidence)
    rng = np.random.default_rng(seed)
    deltas, variances = [], []
    boot = np.zeros(n_boot)
    for y, x_a, x_b in zip(labels, a, b, strict=True):
        y, x_a, x_b = (np.asarray(v, dtype=np.float64) for v in (y, x_a, x_b))
        auc_a, auc_b, variance = delong(y, x_a, x_b)
        deltas.append(auc_b - auc_a)
        variances.append(variance)
        for i in range(n_boot):
            rows = rng.integers(0, y.size, size=y.size)
            value = auc_score(y[rows], x_b[rows]) - auc_score(y[rows], x_a[rows])
            boot[i] += value if math.isfinite(value) else deltas[-1]
    if not deltas:
        raise ValueError("paired_auc_delta needs at least one seed")
    boot /= len(deltas)
    delta = float(np.mean(deltas))
    # variance of the mean of independent per-seed deltas
    se = math.sqrt(sum(variances)) / len(deltas)
    if se > 0:
        from scipy.stats import norm

        p_value = float(2 * norm.sf(abs(delta) / se))
    else:
        p_value = 1.0 if delta == 0 else 0.0
    low, high = _interval(boot, confidence)
    return PairedDelta(delta, low, high, p_value, confidence,
                       int(sum(len(np.asarray(y)) for y in labels)), len(deltas), "delong")
