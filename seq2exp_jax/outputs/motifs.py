"""Motif enrichment of discovered elements: log-odds PWMs, a p-value threshold from the
exact score distribution, both-strand scanning, and Fisher's test per motif with an odds
ratio, its 95% interval and Benjamini-Hochberg q-values; the table and its figure.

Scoring (as FIMO does): a motif's base frequencies f get a pseudocount weighted by the
background b, p = (f + pseudocount * b) / (1 + pseudocount), and each base scores
log2(p / b), rounded to 1/SCALE bit; a site's score is the sum over its W positions, on
either strand (a window holding an N never scores). The background b is the base
composition of the sequences scanned (elements and background together, strand-symmetric).

Threshold: a site is a hit when its score s has P(S >= s) <= `p_value` (1e-4 by default,
FIMO's and HOMER-like) under the background, computed exactly by convolving the positions'
score distributions. A p-value, unlike a fraction of the maximum score, gives every motif
the same false-positive rate per site whatever its width and information content: at 0.8
of its range the sharp 8 bp KLF1 and the broad 11 bp GATA1 would fire at very different
rates in random DNA. A region *has* the motif when its best site (either strand) is a hit.

Enrichment: for each motif the 2x2 table (elements with / without a hit, background with /
without), Fisher's exact test, one-sided for enrichment (scipy.stats.fisher_exact,
alternative='greater'); the conditional maximum-likelihood odds ratio with its exact 95%
interval (scipy.stats.contingency.odds_ratio; inf when no background region has a hit);
q-values by Benjamini-Hochberg over all motifs of the file.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import scipy.stats
from jaxtyping import Bool, Float, Int, UInt8
from scipy.stats.contingency import odds_ratio

from data_pipeline.io import atomic_output
from data_pipeline.readers.motifs import MotifMatrix
from seq2exp_jax.outputs import plots

SCALE = 100  # integer score units per bit
N_CODE = 4
_NEVER = -(1 << 40)  # the score of a base N: no window holding one reaches a threshold
TABLE_COLUMNS = ("motif_id", "name", "width", "score_threshold", "elements",
                 "elements_with_hit", "background", "background_with_hit",
                 "fraction_elements", "fraction_background", "odds_ratio", "ci_low",
                 "ci_high", "p_value", "q_value")


def base_composition(sequences: list[UInt8[np.ndarray, "_"]]) -> Float[np.ndarray, "4"]:
  """Strand-symmetric A C G T frequencies of uint8 code sequences (N ignored)."""
  counts = np.zeros(4)
  for codes in sequences:
    counts += np.bincount(codes[codes < N_CODE], minlength=4)[:4]
  counts = counts + counts[::-1] + 1.0  # both strands; +1 keeps every base possible
  return counts / counts.sum()


def log_odds(freq: Float[np.ndarray, "W 4"], background: Float[np.ndarray, "4"],
             pseudocount: float) -> Float[np.ndarray, "W 4"]:
  """log2(p / b) with p = (freq + pseudocount * b) / (1 + pseudocount)."""
  prob = (freq + pseudocount * background) / (1.0 + pseudocount)
  return np.log2(prob / background)


def score_tail(scores: Int[np.ndarray, "W 4"], background: Float[np.ndarray, "4"]
               ) -> tuple[int, Float[np.ndarray, "V"]]:
  """The exact null distribution of a site's integer score, as (lowest score, tail) with
  tail[k] = P(S >= lowest + k) for a site drawn base by base from `background`."""
  shifted = scores - scores.min(1, keepdims=True)
  dist = np.ones(1)
  for row in shifted:
    out = np.zeros(len(dist) + int(row.max()))
    for base in range(4):
      out[row[base]:row[base] + len(dist)] += background[base] * dist
    dist = out
  tail = np.cumsum(dist[::-1])[::-1]
  return int(scores.min(1).sum()), np.minimum(tail, 1.0)


@dataclasses.dataclass(frozen=True)
class ScoredMotif:
  """A motif ready to scan: `scores` int64 (W, 5) in 1/SCALE bit (column N = never), a site
  is a hit at score >= `threshold` (one more than the best site when p is unreachable)."""

  motif_id: str
  name: str
  scores: np.ndarray
  threshold: int

  @property
  def width(self) -> int:
    return self.scores.shape[0]

  @property
  def threshold_bits(self) -> float:
    return self.threshold / SCALE


def prepare(matrix: MotifMatrix, background: Float[np.ndarray, "4"], *, p_value: float,
            pseudocount: float) -> ScoredMotif:
  """Integer log-odds scores of `matrix` and its p-value threshold under `background`."""
  scores = np.rint(log_odds(matrix.frequencies(), background, pseudocount) * SCALE)
  scores = scores.astype(np.int64)
  lowest, tail = score_tail(scores, background)
  reached = np.flatnonzero(tail <= p_value)
  threshold = lowest + int(reached[0]) if len(reached) else int(scores.max(1).sum()) + 1
  with_n = np.concatenate([scores, np.full((len(scores), 1), _NEVER)], axis=1)
  return ScoredMotif(matrix.motif_id, matrix.name, with_n, threshold)


def _window_sums(codes: UInt8[np.ndarray, "L"], scores: Int[np.ndarray, "W 5"]
                 ) -> Int[np.ndarray, "P"]:
  n = len(codes) - len(scores) + 1
  total = np.zeros(max(n, 0), np.int64)
  for j, row in enumerate(scores):
    total += row[codes[j:j + n]]
  return total


def site_scores(codes: UInt8[np.ndarray, "L"], motif: ScoredMotif
                ) -> tuple[Int[np.ndarray, "P"], Int[np.ndarray, "P"]]:
  """(forward, reverse) integer scores of every start p of `codes`, each (L - W + 1,);
  reverse[p] scores the reverse complement of codes[p:p+W] (the site on the - strand)."""
  reverse = np.concatenate([motif.scores[::-1, 3::-1], motif.scores[::-1, 4:]], axis=1)
  return _window_sums(codes, motif.scores), _window_sums(codes, reverse)


def best_site(codes: UInt8[np.ndarray, "L"], motif: ScoredMotif) -> tuple[int, str, float]:
  """(start, strand '+' or '-', score in bits) of the best site of `motif` in `codes`."""
  fwd, rev = site_scores(codes, motif)
  if len(fwd) == 0:
    raise ValueError(f"sequence of {len(codes)} bp is shorter than {motif.name} "
                     f"({motif.width} bp)")
  if fwd.max() >= rev.max():
    return int(fwd.argmax()), "+", float(fwd.max()) / SCALE
  return int(rev.argmax()), "-", float(rev.max()) / SCALE


def region_hits(sequences: list[UInt8[np.ndarray, "_"]], motifs: list[ScoredMotif]
                ) -> Bool[np.ndarray, "R M"]:
  """hits[r, m]: the best site of motif m in sequence r (either strand) is a hit."""
  if not sequences:
    return np.zeros((0, len(motifs)), bool)
  pad = max(m.width for m in motifs)
  gap = np.full(pad, N_CODE, np.uint8)  # windows never span two regions
  packed = np.concatenate([part for codes in sequences for part in (codes, gap)])
  starts = np.cumsum([0] + [len(c) + pad for c in sequences[:-1]])
  hits = np.zeros((len(sequences), len(motifs)), bool)
  for k, motif in enumerate(motifs):
    best = np.maximum(*site_scores(packed, motif))
    best = np.append(best, np.full(len(packed) - len(best) + 1, _NEVER))
    hits[:, k] = np.maximum.reduceat(best, starts) >= motif.threshold
  return hits


def bh_qvalues(p_values: Float[np.ndarray, "M"]) -> Float[np.ndarray, "M"]:
  """Benjamini-Hochberg adjusted p-values (q-values) of independent tests."""
  p = np.asarray(p_values, np.float64)
  return scipy.stats.false_discovery_control(p, method="bh") if len(p) else p


@dataclasses.dataclass(frozen=True)
class MotifEnrichment:
  """One row of motifs.tsv (see TABLE_COLUMNS)."""

  motif_id: str
  name: str
  width: int
  score_threshold: float
  elements: int
  elements_with_hit: int
  background: int
  background_with_hit: int
  odds_ratio: float
  ci_low: float
  ci_high: float
  p_value: float
  q_value: float

  @property
  def fraction_elements(self) -> float:
    return self.elements_with_hit / max(self.elements, 1)

  @property
  def fraction_background(self) -> float:
    return self.background_with_hit / max(self.background, 1)


def enrichment(element_hits: Bool[np.ndarray, "E M"], background_hits: Bool[np.ndarray, "G M"],
               motifs: list[ScoredMotif]) -> list[MotifEnrichment]:
  """The enrichment rows of every motif, sorted by q-value, then p-value, then name."""
  n_e, n_g = len(element_hits), len(background_hits)
  rows, p_values = [], []
  for k, motif in enumerate(motifs):
    a, c = int(element_hits[:, k].sum()), int(background_hits[:, k].sum())
    table = [[a, n_e - a], [c, n_g - c]]
    p = float(scipy.stats.fisher_exact(table, alternative="greater").pvalue)
    ratio = odds_ratio(table, kind="conditional")
    ci = ratio.confidence_interval(0.95)
    rows.append((motif, a, c, float(ratio.statistic), float(ci.low), float(ci.high)))
    p_values.append(p)
  q_values = bh_qvalues(np.array(p_values))
  out = [MotifEnrichment(m.motif_id, m.name, m.width, m.threshold_bits, n_e, a, n_g, c,
                         ratio, lo, hi, p, float(q))
         for (m, a, c, ratio, lo, hi), p, q in zip(rows, p_values, q_values)]
  return sorted(out, key=lambda r: (r.q_value, r.p_value, r.name, r.motif_id))


def motif_enrichment(element_sequences: list[UInt8[np.ndarray, "_"]],
                     background_sequences: list[UInt8[np.ndarray, "_"]],
                     matrices: list[MotifMatrix], *, p_value: float = 1e-4,
                     pseudocount: float = 0.1
                     ) -> tuple[list[MotifEnrichment], Float[np.ndarray, "4"]]:
  """Scans both sets with every matrix and tests each for enrichment in the elements.

  Returns (rows sorted by q, the A C G T background the scores used)."""
  if not element_sequences or not background_sequences:
    raise ValueError(f"motif_enrichment: {len(element_sequences)} element and "
                     f"{len(background_sequences)} background sequences; need both")
  composition = base_composition(element_sequences + background_sequences)
  motifs = [prepare(m, composition, p_value=p_value, pseudocount=pseudocount)
            for m in matrices]
  rows = enrichment(region_hits(element_sequences, motifs),
                    region_hits(background_sequences, motifs), motifs)
  return rows, composition


def _cell(value) -> str:
  if isinstance(value, float):
    return f"{value:.4g}"
  return str(value)


def write_table(path: str | os.PathLike, rows: list[MotifEnrichment]) -> None:
  """motifs.tsv: a header of TABLE_COLUMNS, one row per motif in the given order; atomic."""
  lines = ["\t".join(TABLE_COLUMNS)]
  for row in rows:
    lines.append("\t".join(_cell(getattr(row, c)) for c in TABLE_COLUMNS))
  with atomic_output(path) as tmp:
    tmp.write_text("\n".join(lines) + "\n")


def plot_enrichment(path: str | os.PathLike, rows: list[MotifEnrichment], *, title: str,
                    top: int = 15, q_level: float = 0.05) -> None:
  """Two panels: the fraction of elements and of background regions with a hit for the
  `top` motifs by q, and -log10 q against log2 odds ratio for all (an infinite ratio is
  drawn at the right edge; up to 10 significant motifs named, else the top 3); the
  q = `q_level` line dashed. PNG, atomic."""
  plt = plots.plt
  shown = rows[:top][::-1]
  fig, (bars, volcano) = plt.subplots(1, 2, figsize=(11, max(3.5, 0.35 * len(shown) + 1.5)))
  y = np.arange(len(shown))
  bars.barh(y + 0.2, [r.fraction_elements for r in shown], height=0.4, label="elements")
  bars.barh(y - 0.2, [r.fraction_background for r in shown], height=0.4, label="background")
  bars.set_yticks(y, [f"{r.name} (q={r.q_value:.2g})" for r in shown])
  bars.set_xlabel("fraction of regions with a hit")
  bars.legend(loc="lower right")
  ratios = np.array([r.odds_ratio for r in rows], float)
  finite = ratios[np.isfinite(ratios) & (ratios > 0)]
  edge = float(np.log2(finite).max(initial=0.0)) + 1.0
  lo = float(np.log2(finite).min(initial=0.0)) - 1.0
  x = np.where(np.isnan(ratios), 0.0, np.log2(np.clip(ratios, 2.0 ** lo, 2.0 ** edge)))
  q = np.array([max(r.q_value, 1e-300) for r in rows])
  significant = q <= q_level
  volcano.scatter(x[~significant], -np.log10(q[~significant]), s=14, c="0.6")
  volcano.scatter(x[significant], -np.log10(q[significant]), s=18, c="C3",
                  label=f"q <= {q_level}")
  labelled = min(10, max(int(significant.sum()), 3))  # the significant ones, else the top 3
  for i, (r, xi, qi) in enumerate(list(zip(rows, x, q))[:labelled]):
    volcano.annotate(r.name, (xi, -np.log10(qi)), fontsize=8, textcoords="offset points",
                     xytext=(3, 3 if i % 2 == 0 else -10))  # neighbours apart
  volcano.axhline(-np.log10(q_level), ls="--", c="k", lw=0.8)
  volcano.set_xlabel("log2 odds ratio (elements vs background)")
  volcano.set_ylabel("-log10 q (Benjamini-Hochberg)")
  if significant.any():
    volcano.legend(loc="upper left")
  fig.suptitle(title)
  plots.save_png(fig, path)
