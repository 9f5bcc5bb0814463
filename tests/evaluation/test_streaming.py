"""Streaming metrics equal their whole-array definitions."""

import numpy as np
import pytest
from scipy import stats

from seq2exp_jax.evaluation.streaming import MaskMetrics, RegressionMetrics


def test_regression_metrics_stream_and_merge():
  rng = np.random.default_rng(0)
  t, p = rng.normal(size=100), rng.normal(size=100)
  valid = rng.random(100) > 0.2
  a, b = RegressionMetrics(), RegressionMetrics()
  for lo in range(0, 60, 7):
    a.update(t[lo:min(lo + 7, 60)], p[lo:min(lo + 7, 60)], valid[lo:min(lo + 7, 60)])
  b.update(t[60:], p[60:], valid[60:])
  got = a.merge(b).compute()
  tv, pv = t[valid], p[valid]
  assert got["n"] == valid.sum()
  np.testing.assert_allclose(got["mse"], np.mean((tv - pv) ** 2))
  np.testing.assert_allclose(got["mae"], np.mean(np.abs(tv - pv)))
  np.testing.assert_allclose(got["pearson"], stats.pearsonr(tv, pv).statistic)
  np.testing.assert_allclose(got["spearman"], stats.spearmanr(tv, pv).statistic)


def test_constant_prediction_has_no_correlation_and_empty_fails():
  m = RegressionMetrics()
  m.update([1.0, 2.0], [0.5, 0.5])
  assert np.isnan(m.compute()["pearson"])
  with pytest.raises(ValueError, match="no valid"):
    RegressionMetrics().compute()


def _average_precision(scores, labels):
  """sklearn's definition: sum over distinct thresholds of (R_k - R_{k-1}) P_k."""
  ap, prev_recall = 0.0, 0.0
  for thr in np.unique(scores)[::-1]:
    sel = scores >= thr
    recall = (sel & labels).sum() / labels.sum()
    ap += (recall - prev_recall) * (sel & labels).sum() / sel.sum()
    prev_recall = recall
  return ap


def test_mask_auprc_matches_average_precision():
  rng = np.random.default_rng(1)
  labels = rng.random((4, 300)) < 0.1
  scores = np.clip(labels * 0.3 + rng.random((4, 300)) * 0.8, 0, 1)
  scores = np.round(scores * 20) / 20  # ties, as masks have
  ignore = np.zeros(300, bool)
  ignore[140:160] = True
  m = MaskMetrics()
  m.update(scores[:2], labels[:2], valid=np.array([True, True]), ignore=ignore)
  m2 = MaskMetrics()
  m2.update(scores[2:], labels[2:], valid=np.array([True, False]), ignore=ignore)
  got = m.merge(m2).compute()
  keep = np.ones((4, 300), bool)
  keep[3] = False
  keep[:, ignore] = False
  np.testing.assert_allclose(got["auprc"], _average_precision(scores[keep], labels[keep]),
                             rtol=1e-9)
  np.testing.assert_allclose(got["mask_ratio"], scores[keep].mean())


def test_binary_mask_auprc():
  labels = np.array([[1, 1, 0, 0, 0, 0, 1, 0]], bool)
  mask = np.array([[1, 0, 1, 0, 0, 0, 1, 0]], float)
  got = MaskMetrics()
  got.update(mask, labels)
  # precision 2/3 at recall 2/3, then the base rate 3/8 for the rest
  np.testing.assert_allclose(got.compute()["auprc"], 2 / 3 * 2 / 3 + 1 / 3 * 3 / 8)
