"""Evaluation metrics that stream over batches and add together (host side, numpy float64).

* `RegressionMetrics`: MSE, MAE, Pearson (from running sums) and Spearman (from the kept
  (target, prediction) pairs: one pair of floats per gene, so memory is trivial).
* `MaskMetrics`: how well a mask scores the planted causal bases of the synthetic genome:
  AUPRC (average precision, ties as one threshold, as sklearn's `average_precision_score`)
  from score histograms, and the mask ratio (mean mask value). Scores are bucketed into
  2^16 equal bins of [0, 1], exact for binary masks.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import stats

MASK_BINS = 1 << 16


@dataclasses.dataclass
class RegressionMetrics:
  """Running sums over genes; `update` with (G,) arrays, `merge` two partial states."""
  targets: list[np.ndarray] = dataclasses.field(default_factory=list)
  predictions: list[np.ndarray] = dataclasses.field(default_factory=list)

  def update(self, target, prediction, valid=None) -> None:
    """target, prediction: (B,); valid: (B,) bool (padding rows are False)."""
    t = np.asarray(target, np.float64).reshape(-1)
    p = np.asarray(prediction, np.float64).reshape(-1)
    if valid is not None:
      keep = np.asarray(valid, bool).reshape(-1)
      t, p = t[keep], p[keep]
    self.targets.append(t)
    self.predictions.append(p)

  def merge(self, other: "RegressionMetrics") -> "RegressionMetrics":
    return RegressionMetrics(self.targets + other.targets,
                             self.predictions + other.predictions)

  def compute(self) -> dict[str, float]:
    t = np.concatenate(self.targets) if self.targets else np.zeros(0)
    p = np.concatenate(self.predictions) if self.predictions else np.zeros(0)
    n = len(t)
    if n == 0:
      raise ValueError("no valid examples were evaluated")
    err = p - t
    out = {"n": float(n), "mse": float(np.mean(err ** 2)), "mae": float(np.mean(np.abs(err)))}
    if n > 1 and np.std(t) > 0 and np.std(p) > 0:
      out["pearson"] = float(np.corrcoef(t, p)[0, 1])
      out["spearman"] = float(stats.spearmanr(t, p).statistic)
    else:  # a constant prediction (e.g. a collapsed model) has no correlation
      out["pearson"] = out["spearman"] = float("nan")
    return out


@dataclasses.dataclass
class MaskMetrics:
  """Histograms of mask scores at causal (positive) and other (negative) bases."""
  positives: np.ndarray = dataclasses.field(
      default_factory=lambda: np.zeros(MASK_BINS, np.int64))
  negatives: np.ndarray = dataclasses.field(
      default_factory=lambda: np.zeros(MASK_BINS, np.int64))
  mask_sum: float = 0.0

  def update(self, mask, causal, valid=None, ignore=None) -> None:
    """mask: (B, L) in [0, 1]; causal: (B, L) bool; valid: (B,) bool; ignore: (L,) bool
    positions left out (the promoter, forced to 1 by the model)."""
    mask = np.asarray(mask, np.float64)
    causal = np.asarray(causal, bool)
    keep = np.ones(mask.shape, bool)
    if valid is not None:
      keep &= np.asarray(valid, bool)[:, None]
    if ignore is not None:
      keep &= ~np.asarray(ignore, bool)[None, :]
    bins = np.clip((mask * (MASK_BINS - 1)).round().astype(np.int64), 0, MASK_BINS - 1)
    self.positives += np.bincount(bins[keep & causal], minlength=MASK_BINS)
    self.negatives += np.bincount(bins[keep & ~causal], minlength=MASK_BINS)
    self.mask_sum += float(mask[keep].sum())

  def merge(self, other: "MaskMetrics") -> "MaskMetrics":
    return MaskMetrics(self.positives + other.positives, self.negatives + other.negatives,
                       self.mask_sum + other.mask_sum)

  def compute(self) -> dict[str, float]:
    total = self.positives.sum() + self.negatives.sum()
    if total == 0:
      raise ValueError("no positions were scored")
    out = {"mask_ratio": self.mask_sum / total,
           "causal_fraction": float(self.positives.sum() / total)}
    if self.positives.sum() == 0:
      out["auprc"] = float("nan")
      return out
    # Thresholds from the highest bin down; each occupied bin is one threshold.
    tp = np.cumsum(self.positives[::-1])
    fp = np.cumsum(self.negatives[::-1])
    occupied = (self.positives[::-1] + self.negatives[::-1]) > 0
    tp, fp = tp[occupied], fp[occupied]
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    out["auprc"] = float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))
    return out
