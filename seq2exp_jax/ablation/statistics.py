"""Confidence intervals for a comparison table: over seeds (Student t) and over genes (a
paired bootstrap), so a difference between two models is reported with its uncertainty."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

BOOTSTRAP = 2_000
LEVEL = 0.95


def mean_ci(values: list[float]) -> tuple[float, float, float]:
  """(mean, low, high) of the 95% Student-t interval over seeds; one value has no width."""
  x = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
  if len(x) == 0:
    return (float("nan"),) * 3
  if len(x) == 1:
    return float(x[0]), float(x[0]), float(x[0])
  half = stats.t.ppf(0.5 + LEVEL / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
  return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def pearson(target: np.ndarray, prediction: np.ndarray) -> float:
  if target.std() == 0 or prediction.std() == 0:
    return float("nan")
  return float(np.corrcoef(target, prediction)[0, 1])


def bootstrap_pearson(target: np.ndarray, prediction: np.ndarray, seed: int = 0
                      ) -> tuple[float, float, float]:
  """(r, low, high): the Pearson r over genes with its 95% percentile bootstrap interval."""
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, len(target), (BOOTSTRAP, len(target)))
  draws = [pearson(target[i], prediction[i]) for i in idx]
  lo, hi = np.nanpercentile(draws, [50 * (1 - LEVEL), 50 * (1 + LEVEL)])
  return pearson(target, prediction), float(lo), float(hi)


def bootstrap_difference(target: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int = 0
                         ) -> tuple[float, float, float]:
  """(r_a - r_b, low, high) over the same resampled genes (a paired bootstrap)."""
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, len(target), (BOOTSTRAP, len(target)))
  draws = [pearson(target[i], a[i]) - pearson(target[i], b[i]) for i in idx]
  lo, hi = np.nanpercentile(draws, [50 * (1 - LEVEL), 50 * (1 + LEVEL)])
  return pearson(target, a) - pearson(target, b), float(lo), float(hi)
