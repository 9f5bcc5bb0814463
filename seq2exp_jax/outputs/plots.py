"""Figures of a trained model: predicted vs observed expression, and a gene's window with the
learned mask, the input signals and interval tracks (peaks, ground truth).

matplotlib runs with the Agg backend (no display needed); every PNG is written atomically
and every figure is closed after saving.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after selecting the backend)
import numpy as np  # noqa: E402

from data_pipeline.io import atomic_output  # noqa: E402

# Continuous tracks longer than this are max-pooled into this many bins for drawing.
MAX_BINS = 2000
DPI = 120


def save_png(fig, path: str | os.PathLike) -> None:
  """Saves `fig` as PNG at `path` atomically and closes it (also on error)."""
  try:
    with atomic_output(path) as tmp:
      fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
  finally:
    plt.close(fig)


def metrics_text(metrics: dict[str, float] | None) -> str:
  """'pearson = 0.812, mse = 0.103' (empty for no metrics)."""
  return ", ".join(f"{k} = {v:.4g}" for k, v in (metrics or {}).items())


def scatter_predictions(path: str | os.PathLike, target, prediction, *, title: str,
                        metrics: dict[str, float] | None = None) -> None:
  """Predicted vs observed expression with the y = x line; metrics under the title.

  target: float (G,) observed values. prediction: float (G,) the model's values.
  """
  target, prediction = np.asarray(target, float), np.asarray(prediction, float)
  if target.ndim != 1 or target.shape != prediction.shape or len(target) == 0:
    raise ValueError(f"scatter_predictions {path}: expected target and prediction of one "
                     f"shape (G,), G >= 1; got {target.shape} and {prediction.shape}")
  fig, ax = plt.subplots(figsize=(5.5, 5.5))
  ax.scatter(target, prediction, s=6, alpha=0.5, linewidths=0, label=f"genes (n={len(target)})")
  both = np.concatenate([target, prediction])
  both = both[np.isfinite(both)]
  lo, hi = (float(both.min()), float(both.max())) if len(both) else (0.0, 1.0)
  pad = 0.02 * (hi - lo) or 0.5
  ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1, label="y = x")
  ax.set_xlim(lo - pad, hi + pad)
  ax.set_ylim(lo - pad, hi + pad)
  ax.set_aspect("equal")
  ax.set_xlabel("observed")
  ax.set_ylabel("predicted")
  text = metrics_text(metrics)
  ax.set_title(f"{title}\n{text}" if text else title)
  ax.legend(loc="upper left", frameon=False)
  save_png(fig, path)


def max_pool(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
  """values float (L,) -> (bin starts (N,), max per bin (N,)), N = min(L, bins), NaN skipped
  (a bin of NaN only stays NaN)."""
  edges = np.unique(np.linspace(0, len(values), min(len(values), bins) + 1).astype(int)[:-1])
  return edges, np.fmax.reduceat(values, edges)


def bool_runs(flags: np.ndarray) -> list[tuple[int, int]]:
  """flags bool (L,) -> [(start, length)] of its True runs (window coordinates)."""
  edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
  starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
  return list(zip(starts.tolist(), (ends - starts).tolist()))


def check_lengths(path, tracks: dict, intervals: dict) -> int:
  """The common length L of every (L,) array of `tracks` and `intervals`."""
  shapes = {name: np.shape(v) for name, v in {**tracks, **intervals}.items()}
  lengths = {s[0] for s in shapes.values() if len(s) == 1}
  if not shapes or len(lengths) != 1 or any(len(s) != 1 for s in shapes.values()):
    raise ValueError(f"gene_tracks {path}: expected at least one track and arrays of one "
                     f"shape (L,), got {shapes}")
  for name, v in intervals.items():
    if np.asarray(v).dtype != np.bool_:
      raise ValueError(f"gene_tracks {path}: interval row {name!r} must be bool (L,), got "
                       f"{np.asarray(v).dtype}")
  return lengths.pop()


def gene_tracks(path: str | os.PathLike, *, chrom: str, start: int, title: str,
                tracks: dict[str, np.ndarray], intervals: dict[str, np.ndarray],
                tss: int | None = None) -> None:
  """Stacked panels over the window [start, start + L) of `chrom`: one filled line per
  continuous track, then one panel with a horizontal bar row per interval track.

  tracks: {name: float (L,)} (e.g. "mask", "DNase", "H3K27ac"), max-pooled into MAX_BINS
  bins for drawing. intervals: {name: bool (L,)} (e.g. "MACS3 peaks", "truth: causal"),
  drawn exactly. tss: genome position marked with a dashed line on every panel.
  """
  length = check_lengths(path, tracks, intervals)
  n_panels = len(tracks) + (1 if intervals else 0)
  heights = [1.4] * len(tracks) + ([0.35 * len(intervals) + 0.4] if intervals else [])
  fig, axes = plt.subplots(n_panels, 1, sharex=True, figsize=(12, sum(heights) + 1.0),
                           gridspec_kw={"height_ratios": heights}, squeeze=False)
  axes = axes[:, 0]
  for ax, (name, values) in zip(axes, tracks.items()):
    bin_starts, pooled = max_pool(np.asarray(values, np.float64), MAX_BINS)
    x = np.append(bin_starts, length) + start
    y = np.append(pooled, pooled[-1])
    ax.fill_between(x, 0, np.nan_to_num(y), step="post", alpha=0.35, lw=0)
    ax.step(x, y, where="post", lw=0.8)
    ax.set_ylabel(name, rotation=0, ha="right", va="center")
  if intervals:
    ax = axes[-1]
    for row, (name, flags) in enumerate(intervals.items()):
      runs = [(start + s, n) for s, n in bool_runs(np.asarray(flags))]
      ax.broken_barh(runs, (row - 0.35, 0.7), color=f"C{row % 10}")
    ax.set_yticks(range(len(intervals)), list(intervals))
    ax.set_ylim(len(intervals) - 0.5, -0.5)
  for ax in axes:
    if tss is not None:
      ax.axvline(tss, color="k", ls="--", lw=0.8)
    ax.spines[["top", "right"]].set_visible(False)
  axes[-1].set_xlim(start, start + length)
  axes[-1].ticklabel_format(axis="x", style="plain", useOffset=False)
  axes[-1].set_xlabel(f"{chrom} position (bp)")
  axes[0].set_title(title)
  save_png(fig, path)


def mask_mass_bars(path: str | os.PathLike, masses: dict[str, dict[str, float]], *,
                   title: str) -> None:
  """One group of bars per masked model: the share of its mask's mass on the candidate
  elements that lies on the causal ones and on each kind of decoy."""
  names = list(masses)
  classes = [k for k in next(iter(masses.values())) if k != "outside"]
  fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(names), 3.2))
  width = 0.8 / len(classes)
  for i, kind in enumerate(classes):
    ax.bar(np.arange(len(names)) + (i - (len(classes) - 1) / 2) * width,
           [masses[n][kind] for n in names], width, label=kind)
  ax.set_xticks(np.arange(len(names)), names, rotation=15)
  ax.set_ylabel("share of mask mass on elements")
  ax.set_title(title, fontsize=9)
  ax.legend(fontsize=8, frameon=False)
  save_png(fig, path)
