"""Transcription-factor motifs of the synthetic genome: the grammar that makes an enhancer
causal, its decoy look-alikes, and a scanner that finds them again.

The matrices are real JASPAR 2024 CORE count matrices (shipped in resources/motifs.jaspar;
see resources/PROVENANCE.md). One grammar *unit* is a GATA1 site, a 4 bp spacer, then a KLF1
site on the same strand (the whole unit may sit on either strand). Decoys carry units that
look alike but do not count: the same layout with the liver factors HNF4A + FOXA2 ("dead"),
or GATA1 and KLF1 in a broken arrangement ("split": KLF1 on the opposite strand, or on the
same strand 20-40 bp too far).

DNA codes: uint8 A=0 C=1 G=2 T=3 N=4.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from data_pipeline.readers.motifs import read_motif_file

ACTIVATOR_1, ACTIVATOR_2 = "GATA1", "KLF1"
DEAD_1, DEAD_2 = "HNF4A", "FOXA2"
SPACER = 4
# Background base frequencies of the log-odds scores (the genome's A/T-rich composition).
BACKGROUND = np.array([0.295, 0.205, 0.205, 0.295])
# Planted sites score at least PLANT_MIN_SCORE; the scanner calls a site at SCAN_MIN_SCORE,
# both relative to the matrix's score range (0 = worst, 1 = best possible site).
PLANT_MIN_SCORE = 0.90
SCAN_MIN_SCORE = 0.80
UNIT_KINDS = ("causal", "dead", "split")


@dataclasses.dataclass(frozen=True)
class Motif:
  """One position weight matrix.

  prob: float (W, 4) base probabilities per position (counts + 1% pseudocount).
  log_odds: float (W, 4) log2(prob / BACKGROUND).
  """
  jaspar_id: str
  name: str
  prob: np.ndarray
  log_odds: np.ndarray

  @property
  def width(self) -> int:
    return self.prob.shape[0]

  def relative_score(self, sites: np.ndarray) -> np.ndarray:
    """sites: uint8 (n, W) codes without N -> float (n,) relative scores in [0, 1]."""
    raw = self.log_odds[np.arange(self.width), sites].sum(-1)
    lo, hi = self.log_odds.min(1).sum(), self.log_odds.max(1).sum()
    return (raw - lo) / (hi - lo)


@functools.cache
def load_motifs() -> dict[str, Motif]:
  """The shipped JASPAR matrices (data_pipeline/readers/motifs.py reads them), by TF name."""
  motifs: dict[str, Motif] = {}
  for matrix in read_motif_file():
    counts = matrix.counts  # (W, 4)
    prob = counts + 0.01 * counts.sum(1, keepdims=True) / 4
    prob /= prob.sum(1, keepdims=True)
    name = matrix.name.upper()
    motifs[name] = Motif(matrix.motif_id, name, prob, np.log2(prob / BACKGROUND))
  return motifs


def revcomp(codes: np.ndarray) -> np.ndarray:
  """uint8 (..., W) -> reverse complement along the last axis (N stays N)."""
  comp = np.array([3, 2, 1, 0, 4], np.uint8)
  return comp[codes[..., ::-1]]


def sample_sites(rng: np.random.Generator, motif: Motif, n: int) -> np.ndarray:
  """Draws n strong sites of `motif`: uint8 (n, W), each scoring >= PLANT_MIN_SCORE."""
  out = np.empty((0, motif.width), np.uint8)
  cum = np.cumsum(motif.prob, 1)
  while len(out) < n:
    u = rng.random((4 * n + 16, motif.width))
    draws = (u[..., None] > cum[None]).sum(-1).astype(np.uint8)
    out = np.concatenate([out, draws[motif.relative_score(draws) >= PLANT_MIN_SCORE]])
  return out[:n]


def sample_unit(rng: np.random.Generator, kind: str, background: np.ndarray
                ) -> tuple[np.ndarray, str]:
  """One grammar unit (or look-alike): (uint8 (W,) codes, strand "+" or "-").

  kind: "causal" (GATA1 +4 bp+ KLF1, same strand), "dead" (HNF4A +4 bp+ FOXA2), or "split"
  (GATA1 and KLF1 but never in the causal arrangement). `background`: uint8 (>= 60,) codes
  used for the spacers, so spacers look like the surrounding DNA.
  """
  m = load_motifs()
  if kind == "causal":
    first, second, spacer, flip_second = m[ACTIVATOR_1], m[ACTIVATOR_2], SPACER, False
  elif kind == "dead":
    first, second, spacer, flip_second = m[DEAD_1], m[DEAD_2], SPACER, False
  elif kind == "split":
    first, second = m[ACTIVATOR_1], m[ACTIVATOR_2]
    if rng.random() < 0.5:  # right spacing, KLF1 on the wrong strand
      spacer, flip_second = SPACER, True
    else:  # right strand, too far apart
      spacer, flip_second = int(rng.integers(SPACER + 20, SPACER + 41)), False
  else:
    raise ValueError(f"unknown unit kind {kind!r}: expected one of {UNIT_KINDS}")
  a = sample_sites(rng, first, 1)[0]
  b = sample_sites(rng, second, 1)[0]
  if flip_second:
    b = revcomp(b)
  unit = np.concatenate([a, background[:spacer], b])
  return (revcomp(unit), "-") if rng.random() < 0.5 else (unit, "+")


def site_scores(dna: np.ndarray, motif: Motif) -> tuple[np.ndarray, np.ndarray]:
  """Relative scores of `motif` at every start on both strands.

  dna: uint8 (L,) codes. Returns (forward, reverse), each float (L - W + 1,); a window with
  an N scores -inf. `reverse[p]` scores the reverse complement of dna[p:p+W].
  """
  w = motif.width
  if len(dna) < w:
    return np.full(0, -np.inf), np.full(0, -np.inf)
  windows = np.lib.stride_tricks.sliding_window_view(dna, w)
  has_n = (windows > 3).any(1)
  safe = np.where(windows > 3, 0, windows)
  fwd = motif.relative_score(safe)
  rev = motif.relative_score(revcomp(safe))
  fwd[has_n] = -np.inf
  rev[has_n] = -np.inf
  return fwd, rev


def find_grammar(dna: np.ndarray, first: str = ACTIVATOR_1, second: str = ACTIVATOR_2
                 ) -> list[tuple[int, str]]:
  """Grammar units in `dna` (uint8 (L,) codes): [(start, strand)], where a unit is a `first`
  site followed after SPACER bp by a `second` site on the same strand, both scoring
  >= SCAN_MIN_SCORE. `start` is the unit's leftmost base."""
  m = load_motifs()
  a, b = m[first], m[second]
  a_f, a_r = site_scores(dna, a)
  b_f, b_r = site_scores(dna, b)
  found: list[tuple[int, str]] = []
  n = len(dna) - (a.width + SPACER + b.width) + 1
  if n <= 0:
    return []
  # + strand: a at p, b at p + wa + SPACER. - strand: rc(b) at p, rc(a) at p + wb + SPACER.
  plus = (a_f[:n] >= SCAN_MIN_SCORE) & (
      b_f[a.width + SPACER:a.width + SPACER + n] >= SCAN_MIN_SCORE)
  minus = (b_r[:n] >= SCAN_MIN_SCORE) & (
      a_r[b.width + SPACER:b.width + SPACER + n] >= SCAN_MIN_SCORE)
  found += [(int(p), "+") for p in np.flatnonzero(plus)]
  found += [(int(p), "-") for p in np.flatnonzero(minus)]
  return sorted(found)
