"""The benchmark's statistics and its table: intervals over seeds and genes, the paired
difference, and the words `verdict` prints."""

import math

import numpy as np
import pytest

from seq2exp_jax.ablation import benchmark_table, statistics


def test_mean_ci_is_the_student_t_interval():
  values = [0.70, 0.74, 0.72]
  mean, low, high = statistics.mean_ci(values)
  # t_{0.975, 2} = 4.302653; sd = 0.02
  half = 4.302653 * 0.02 / math.sqrt(3)
  assert mean == pytest.approx(0.72) and low == pytest.approx(0.72 - half, abs=1e-6)
  assert high == pytest.approx(0.72 + half, abs=1e-6)
  assert statistics.mean_ci([0.5]) == (0.5, 0.5, 0.5)


def test_paired_bootstrap_separates_a_better_model():
  rng = np.random.default_rng(0)
  target = rng.normal(size=300)
  good = target + 0.3 * rng.normal(size=300)
  poor = target + 1.5 * rng.normal(size=300)
  d, low, high = statistics.bootstrap_difference(target, good, poor)
  assert d == pytest.approx(np.corrcoef(target, good)[0, 1] - np.corrcoef(target, poor)[0, 1])
  assert 0 < low < d < high
  r, low, high = statistics.bootstrap_pearson(target, good)
  assert low < r < high


def _results(soft_low, soft_high, auprc):
  methods = {"seq2exp_soft": {"pearson": [0.7, 0.72], "mse": [0.3, 0.3], "mask_auprc": auprc,
                              "mask_ratio": [0.2, 0.2], "mask_mass_by_class": None,
                              "runs": ["a", "b"]},
             "motif_aware": {"pearson": [0.85], "mse": [0.1], "mask_auprc": None,
                             "mask_ratio": None, "mask_mass_by_class": None, "runs": []}}
  return {"preset": "tiny", "seed": 3, "n_test_genes": 10, "noise_ceiling": 0.9,
          "prior_mask": {"auprc": 0.3, "mask_ratio": 0.4}, "methods": methods,
          "genes": {"seq2exp_soft": {"pearson": 0.71, "low": 0.6, "high": 0.8}},
          "differences": {"seq2exp_soft - abc_signals":
                          {"pearson": (soft_low + soft_high) / 2, "low": soft_low,
                           "high": soft_high}}}


@pytest.mark.parametrize("low, high, word", [(0.01, 0.1, "better than"),
                                             (-0.1, -0.01, "worse than"),
                                             (-0.05, 0.05, "not distinguishable from")])
def test_verdict_reads_the_interval(low, high, word):
  text = benchmark_table.verdict(_results(low, high, [0.5, 0.5]))
  assert f"- {word} abc_signals" in text
  assert "test Pearson 0.710 (target 0.80: not reached)" in text
  assert "0.140 below motif_aware" in text
  # 0.5 >= 1.5 x 0.3 but < 0.6: not reached
  assert "mask AUPRC 0.500 = 1.67x" in text and "not reached)." in text.splitlines()[-1]


def test_verdict_mask_target_needs_both_bars():
  assert "reached)." in benchmark_table.verdict(_results(0, 1, [0.65, 0.65])).splitlines()[-1]
  assert benchmark_table.verdict(_results(0, 1, [0.65]), method="absent") == ""


def test_markdown_has_a_row_per_method_and_the_prior():
  text = benchmark_table.markdown(_results(0.01, 0.1, [0.5, 0.5]))
  assert "| seq2exp_soft | 2 |" in text and "| motif_aware | 1 | 0.850 |" in text
  assert "signal prior alone (untrained)" in text and "| noise ceiling | | 0.900 |" in text
  assert "| seq2exp_soft - abc_signals | +0.055 | [+0.010, +0.100] |" in text
