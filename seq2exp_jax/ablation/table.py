"""The comparison table of an ablation: one row per experiment, mean ± std over seeds, in
the shape of the paper's Table 1 (plus mask AUPRC and ratio on synthetic data)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

METRICS = (("mse", "MSE"), ("mae", "MAE"), ("pearson", "Pearson"), ("spearman", "Spearman"))
MASK_METRICS = (("auprc", "mask AUPRC"), ("mask_ratio", "mask ratio"))


def _mean_std(values: list[float]) -> str:
  values = [v for v in values if v is not None and not math.isnan(v)]
  if not values:
    return "–"
  if len(values) == 1:
    return f"{values[0]:.4f}"
  return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


def table(results: dict[str, list[dict[str, Any]]], with_mask: bool,
          extra_rows: dict[str, dict[str, str]] | None = None, count: str = "seeds") -> str:
  """Markdown: one row per experiment, mean ± std (sample std) over its runs (`count` names
  them: seeds, or folds); extra_rows {label: {metric key: text}} adds reference rows (e.g.
  the noise ceiling's Pearson)."""
  cols = METRICS + (MASK_METRICS if with_mask else ())
  lines = [f"| Method | {count} | " + " | ".join(c[1] for c in cols) + " |",
           "|---|---:|" + "---:|" * len(cols)]
  for name, runs in results.items():
    cells = [_mean_std([r.get(k) for r in runs]) for k, _ in cols]
    lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
  for label, cells in (extra_rows or {}).items():
    lines.append(f"| {label} | | " + " | ".join(cells.get(k, "") for k, _ in cols) + " |")
  return "\n".join(lines) + "\n"
