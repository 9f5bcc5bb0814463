"""The benchmark's results: per method the metrics of every seed, 95% intervals over seeds
and over genes, and the differences that decide whether the method works.

`results.json` (the schema `seq2exp benchmark` documents):

  {"preset", "seed", "n_test_genes", "noise_ceiling", "prior_mask": {auprc, mask_ratio},
   "methods": {NAME: {"pearson": [per seed], "mse": [...], "mask_auprc": [...] or null,
                      "mask_ratio": [...] or null, "mask_mass_by_class": {...} or null,
                      "runs": [workdir per seed]}},
   "genes": {NAME: {"pearson": r, "low": l, "high": h}},   (seed-mean predictions, bootstrap)
   "differences": {"A - B": {"pearson": d, "low": l, "high": h}}}
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from seq2exp_jax.ablation import statistics

# (method, baseline) pairs whose Pearson difference the table reports, when both ran.
COMPARISONS = (("seq2exp_soft", "abc_signals"), ("seq2exp_soft", "caduceus_signals"),
               ("seq2exp_soft", "promoter_mrna"), ("caduceus_signals", "abc_signals"),
               ("seq2exp_soft_contact", "abc_signals"),
               ("seq2exp_soft_contact", "caduceus_signals_contact"),
               ("seq2exp_soft_contact", "seq2exp_soft"),
               ("caduceus_signals_contact", "abc_signals"),
               # the paper's other rows and the state of the art (issue: Table 1's rest)
               ("epinformer", "abc_signals"), ("epinformer", "promoter_mrna"),
               ("enformer", "promoter_mrna"), ("prism", "promoter_mrna"),
               ("prism", "abc_signals"))


def gene_level(target: np.ndarray, predictions: dict[str, np.ndarray]
               ) -> tuple[dict[str, dict], dict[str, dict]]:
  """Bootstrap intervals over genes of each method's (seed-mean) prediction, and of the
  paired differences in COMPARISONS."""
  genes = {name: dict(zip(("pearson", "low", "high"),
                          statistics.bootstrap_pearson(target, p)))
           for name, p in predictions.items()}
  differences = {}
  for a, b in COMPARISONS:
    if a in predictions and b in predictions:
      differences[f"{a} - {b}"] = dict(zip(("pearson", "low", "high"),
                                           statistics.bootstrap_difference(
                                               target, predictions[a], predictions[b])))
  return genes, differences


def _cell(values: list[float] | None) -> str:
  if not values:
    return "–"
  mean, low, high = statistics.mean_ci(values)
  if not math.isfinite(mean):
    return "–"
  return f"{mean:.3f}" if len(values) == 1 else f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def markdown(results: dict[str, Any]) -> str:
  """The table of results.md: one row per method; intervals are 95%."""
  lines = [
      f"Test split of the `{results['preset']}` genome, seed {results['seed']}: "
      f"{results['n_test_genes']} genes. Pearson over seeds: mean [95% t interval]; over "
      "genes: the seed-mean prediction's r [95% bootstrap interval].", "",
      "| Method | seeds | Pearson (seeds) | Pearson (genes) | MSE | mask AUPRC | mask ratio "
      "| mask on causal |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
  for name, m in results["methods"].items():
    g = results["genes"].get(name)
    genes = f"{g['pearson']:.3f} [{g['low']:.3f}, {g['high']:.3f}]" if g else "–"
    mass = m.get("mask_mass_by_class")
    causal = f"{mass['causal']:.3f}" if mass else "–"
    lines.append(f"| {name} | {len(m['pearson'])} | {_cell(m['pearson'])} | {genes} | "
                 f"{_cell(m['mse'])} | {_cell(m.get('mask_auprc'))} | "
                 f"{_cell(m.get('mask_ratio'))} | {causal} |")
  prior = results.get("prior_mask") or {}
  if prior:
    lines.append(f"| signal prior alone (untrained) | | | | | {prior['auprc']:.3f} | "
                 f"{prior['mask_ratio']:.3f} | |")
  lines.append(f"| noise ceiling | | {results['noise_ceiling']:.3f} | | | | | |")
  if results.get("differences"):
    lines += ["", "| Difference | Pearson | 95% bootstrap interval over genes |",
              "|---|---:|---:|"]
    for name, d in results["differences"].items():
      lines.append(f"| {name} | {d['pearson']:+.3f} | [{d['low']:+.3f}, {d['high']:+.3f}] |")
  return "\n".join(lines) + "\n"


# The targets the method is held to (docs/benchmark.md): test Pearson, mask AUPRC, and the
# mask's AUPRC against the untrained signal prior's.
TARGET_PEARSON, TARGET_AUPRC, TARGET_AUPRC_OVER_PRIOR = 0.80, 0.6, 1.5


def verdict(results: dict[str, Any], method: str = "seq2exp_soft") -> str:
  """What the table shows, in words: `method` against the targets, the baselines it must
  beat (paired bootstrap over genes) and the bar of the grammar-aware and oracle models."""
  methods = results["methods"]
  if method not in methods:
    return ""
  mean = statistics.mean_ci(methods[method]["pearson"])[0]
  lines = [f"{method}: test Pearson {mean:.3f} (target {TARGET_PEARSON:.2f}: "
           f"{'reached' if mean >= TARGET_PEARSON else 'not reached'})."]
  for name, d in results.get("differences", {}).items():
    if not name.startswith(f"{method} - "):
      continue
    other = name.split(" - ", 1)[1]
    if d["low"] > 0:
      word = "better than"
    elif d["high"] < 0:
      word = "worse than"
    else:
      word = "not distinguishable from"
    lines.append(f"- {word} {other}: {d['pearson']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
                 " (95% over genes).")
  gaps = [f"{statistics.mean_ci(methods[bar]['pearson'])[0] - mean:.3f} below {bar}"
          for bar in ("motif_aware", "truth_formula") if bar in methods]
  lines.append("- " + ", ".join(gaps + [f"{results['noise_ceiling'] - mean:.3f} below the "
                                        "noise ceiling."]))
  auprc = methods[method].get("mask_auprc")
  prior = (results.get("prior_mask") or {}).get("auprc")
  if auprc and prior:
    a = statistics.mean_ci(auprc)[0]
    ok = a >= TARGET_AUPRC and a >= TARGET_AUPRC_OVER_PRIOR * prior
    lines.append(f"- mask AUPRC {a:.3f} = {a / prior:.2f}x the untrained signal prior's "
                 f"{prior:.3f} (targets >= {TARGET_AUPRC} and >= {TARGET_AUPRC_OVER_PRIOR}x: "
                 f"{'reached' if ok else 'not reached'}).")
  return "\n".join(lines) + "\n"
