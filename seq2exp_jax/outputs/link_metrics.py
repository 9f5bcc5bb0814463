"""Enhancer-gene links scored against a CRISPRi benchmark (crispr_benchmark.py), as the
ENCODE CRISPR_comparison pipeline does it:

* a tested pair matches the links rows of the same gene (measuredGeneSymbol equal to
  TargetGene or TargetGeneEnsembl_ID, or measuredGeneEnsemblId equal to
  TargetGeneEnsembl_ID) whose element overlaps the tested element; several matched rows
  are aggregated per predictor (`PREDICTORS`: sum for the ABC scores, as its pred_config,
  the maximum otherwise);
* a tested pair of a gene the links do cover but with no overlapping row counts as
  predicted 0 (the pipeline's fill value); pairs of genes with no links row at all (genes
  of another split, say) are left out and counted;
* predictors: our `Score`, `ABC.Score`, activity x contact (`ABC.Score.Numerator`), the
  in-silico deletion (-deletion_effect), MACS3 (the fraction of the tested element inside
  the MACS3 DNase peaks of `--peaks`, else the matched rows' MACS3_overlap) and distance
  (|element midpoint - TSS| from the benchmark's TSS column, closer ranks higher);
* AUPRC is the average precision (the step-wise area, ties as one threshold, as sklearn's
  average_precision_score); precision at 70% recall is the precision at the highest
  threshold whose recall reaches 0.7.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Sequence

import numpy as np

from data_pipeline import io
from data_pipeline.errors import DataFormatError
from seq2exp_jax.outputs.crispr_benchmark import Pair, read_table
from seq2exp_jax.outputs.plots import plt, save_png

# name -> (links column, how matched rows combine, sign: larger sign x value ranks higher)
PREDICTORS: dict[str, tuple[str, str, float]] = {
    "Score": ("Score", "max", 1.0),
    "ABC.Score": ("ABC.Score", "sum", 1.0),
    "activity x contact": ("ABC.Score.Numerator", "sum", 1.0),
    "deletion": ("deletion_effect", "max", -1.0),
    "MACS3": ("MACS3_overlap", "max", 1.0),
}
DISTANCE = "distance"
LINK_REQUIRED = ("chr", "start", "end", "TargetGene", "Score")
RECALL = 0.7


@dataclasses.dataclass(frozen=True)
class Link:
  chrom: str
  start: int
  end: int
  genes: tuple[str, ...]  # TargetGene, TargetGeneEnsembl_ID
  values: dict[str, float]  # links column -> value (NaN for NA)


def read_links(path: str | os.PathLike, chrom_lengths: dict[str, int] | None = None
               ) -> list[Link]:
  """The rows of a links table (seq2exp_jax/outputs/links.py, plain or gzip); a row that is
  not an interval on a chromosome of `chrom_lengths` (when given) or holds a value that is
  not a number is refused naming the file and line."""
  header, rows = read_table(path, LINK_REQUIRED, "links")
  columns = [c for c, _, _ in PREDICTORS.values() if c in header] + (
      [DISTANCE] if DISTANCE in header else [])
  links = []
  for n, row in rows:
    try:
      if chrom_lengths is not None and row["chr"] not in chrom_lengths:
        raise ValueError(f"unknown chromosome {row['chr']!r} (--chrom-sizes has "
                         f"{', '.join(list(chrom_lengths)[:4])}, ...)")
      start, end = int(row["start"]), int(row["end"])
      if not 0 <= start < end:
        raise ValueError(f"expected 0 <= start < end, got {start}, {end}")
      values = {c: float("nan") if row[c] in ("NA", "") else float(row[c]) for c in columns}
    except ValueError as e:
      raise DataFormatError(f"links {path} line {n}: {e}") from None
    genes = tuple(g for g in (row["TargetGene"], row.get("TargetGeneEnsembl_ID")) if g)
    links.append(Link(row["chr"], start, end, genes, values))
  return links


def read_peaks(path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{chrom: (starts, ends)} of a BED/narrowPeak file's intervals, merged and sorted."""
  by_chrom: dict[str, list[tuple[int, int]]] = {}
  for n, line in enumerate(pathlib.Path(path).read_text().splitlines(), start=1):
    if not line.strip() or line.startswith(("#", "track", "browser")):
      continue
    fields = line.split("\t")
    try:
      by_chrom.setdefault(fields[0], []).append((int(fields[1]), int(fields[2])))
    except (IndexError, ValueError):
      raise DataFormatError(f"--peaks {path} line {n}: expected chrom, start, end") from None
  merged = {}
  for chrom, intervals in by_chrom.items():
    out: list[list[int]] = []
    for s, e in sorted(intervals):
      if out and s <= out[-1][1]:
        out[-1][1] = max(out[-1][1], e)
      else:
        out.append([s, e])
    merged[chrom] = tuple(np.array(x, np.int64) for x in zip(*out))
  return merged


def covered_fraction(peaks: dict, chrom: str, start: int, end: int) -> float:
  """The fraction of [start, end) inside the merged intervals of `peaks` on `chrom`."""
  if chrom not in peaks:
    return 0.0
  starts, ends = peaks[chrom]
  i, j = np.searchsorted(ends, start, side="right"), np.searchsorted(starts, end)
  overlap = np.minimum(ends[i:j], end) - np.maximum(starts[i:j], start)
  return float(np.clip(overlap, 0, None).sum()) / (end - start)


@dataclasses.dataclass(frozen=True)
class Matched:
  """The benchmark pairs evaluated, each predictor's ranking value per pair, whether a links
  row overlapped it, and how many pairs were left out (their gene has no links row)."""

  pairs: list[Pair]
  scores: dict[str, np.ndarray]  # predictor -> float (n,), larger ranks higher
  matched: np.ndarray  # bool (n,)
  uncovered: int


def match(pairs: Sequence[Pair], links: Sequence[Link], peaks: dict | None = None) -> Matched:
  """Each pair's predictor values from the links overlapping it (module docstring)."""
  by_gene: dict[tuple[str, str], list[Link]] = {}
  for link in links:
    for gene in set(link.genes):
      by_gene.setdefault((link.chrom, gene), []).append(link)
  genes = {g for _, g in by_gene}
  kept = [p for p in pairs if p.gene in genes or (p.ensembl and p.ensembl in genes)]
  names = [n for n, (c, _, _) in PREDICTORS.items() if links and c in links[0].values]
  scores = {n: np.zeros(len(kept)) for n in names}
  matched = np.zeros(len(kept), bool)
  link_distance = np.full(len(kept), np.inf)
  for i, p in enumerate(kept):
    found = {id(link): link for key in {p.gene, p.ensembl} if key
             for link in by_gene.get((p.chrom, key), ()) if link.start < p.end
             and link.end > p.start}.values()
    matched[i] = bool(found)
    for name in names:
      column, how, sign = PREDICTORS[name]
      values = np.array([sign * link.values[column] for link in found])
      values = values[np.isfinite(values)]
      if len(values):
        scores[name][i] = values.sum() if how == "sum" else values.max()
    distances = [link.values[DISTANCE] for link in found if DISTANCE in link.values]
    link_distance[i] = min(distances, default=np.inf)
  if peaks is not None:
    scores["MACS3"] = np.array([covered_fraction(peaks, p.chrom, p.start, p.end) for p in kept])
  if kept and all(p.tss is not None for p in kept):
    link_distance = np.array([abs((p.start + p.end) // 2 - p.tss) for p in kept], float)
  scores["distance"] = -link_distance
  return Matched(kept, scores, matched, len(pairs) - len(kept))


def pr_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(precision, recall, threshold) at every distinct score, highest first; labels bool
  (n,), scores float (n,) (tied scores form one threshold)."""
  labels, scores = np.asarray(labels, bool), np.asarray(scores, float)
  order = np.argsort(-scores, kind="stable")
  labels, scores = labels[order], scores[order]
  last = np.r_[np.flatnonzero(scores[1:] != scores[:-1]), len(scores) - 1]  # tie ends
  tp = np.cumsum(labels)[last]
  return tp / (last + 1), tp / max(labels.sum(), 1), scores[last]


def average_precision(labels, scores) -> float:
  """AUPRC as sum over thresholds of (recall step) x precision; NaN without positives."""
  if not np.any(labels):
    return float("nan")
  precision, recall, _ = pr_curve(labels, scores)
  return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def precision_at_recall(labels, scores, recall: float = RECALL) -> tuple[float, float]:
  """(precision, threshold) at the highest threshold whose recall is >= `recall`."""
  if not np.any(labels):
    return float("nan"), float("nan")
  precision, recalls, thresholds = pr_curve(labels, scores)
  i = int(np.argmax(recalls >= recall - 1e-12))
  return float(precision[i]), float(thresholds[i])


def metrics(m: Matched) -> list[dict[str, float | str | int]]:
  """One row per predictor: AUPRC, precision and threshold at 70% recall, counts."""
  labels = np.array([p.positive for p in m.pairs], bool)
  rows = []
  for name, scores in m.scores.items():
    precision, threshold = precision_at_recall(labels, scores)
    rows.append({"predictor": name, "AUPRC": average_precision(labels, scores),
                 "precision_at_70pct_recall": precision, "threshold_at_70pct_recall": threshold,
                 "pairs": len(labels), "positives": int(labels.sum()),
                 "prevalence": float(labels.mean()) if len(labels) else float("nan"),
                 "matched_pairs": int(m.matched.sum()), "pairs_of_unlinked_genes": m.uncovered})
  return rows


def _text(value) -> str:
  return f"{value + 0.0:.6g}" if isinstance(value, float) else str(value)  # no "-0"


def write_evaluation(out: str | os.PathLike, m: Matched, rows: list[dict], title: str
                     ) -> list[str]:
  """metrics.tsv, pairs.tsv (every evaluated pair with its predictor values) and
  precision_recall.png into `out`, replacing old ones together; returns their names."""
  labels = np.array([p.positive for p in m.pairs], bool)
  fig, ax = plt.subplots(figsize=(6, 5))
  for row in rows:
    precision, recall, _ = pr_curve(labels, m.scores[row["predictor"]])
    ax.step(np.r_[0.0, recall], np.r_[precision[:1], precision], where="post",
            label=f"{row['predictor']} (AUPRC {row['AUPRC']:.3f})")
  if rows:
    ax.axhline(rows[0]["prevalence"], color="grey", ls="--", lw=1,
               label=f"prevalence {rows[0]['prevalence']:.3f}")
  ax.axvline(RECALL, color="grey", ls=":", lw=1)
  ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
  ax.legend(fontsize=8, loc="upper right")
  columns = list(rows[0]) if rows else ["predictor"]
  pair_columns = ["chrom", "start", "end", "gene", "Regulated", "matched", *m.scores]
  with io.file_set(out) as tmp:
    (tmp / "metrics.tsv").write_text("\t".join(columns) + "\n" + "".join(
        "\t".join(_text(r[c]) for c in columns) + "\n" for r in rows))
    (tmp / "pairs.tsv").write_text("\t".join(pair_columns) + "\n" + "".join(
        "\t".join([p.chrom, str(p.start), str(p.end), p.gene, str(p.positive).upper(),
                   str(bool(m.matched[i])).upper(),
                   *(_text(float(m.scores[k][i])) for k in m.scores)]) + "\n"
        for i, p in enumerate(m.pairs)))
    save_png(fig, tmp / "precision_recall.png")
  return ["metrics.tsv", "pairs.tsv", "precision_recall.png"]
