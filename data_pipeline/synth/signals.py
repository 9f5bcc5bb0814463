"""Epigenomic signals of the synthetic genome: DNase and H3K27ac coverage, and Hi-C contact
with each TSS.

Coverage tracks are count-like (non-negative reads per bp) at BIN bp resolution. Every
candidate element, causal or decoy, gets a peak whose area is its real read count times
FRAGMENT[track] (a read covers that many bp): DNase a narrow Gaussian at the element centre,
H3K27ac two broader lobes flanking it (acetylated nucleosomes around the open site). Each
promoter gets the same shapes from its real TSS +- 500 bp counts. Background: gamma noise per
bin, and every peak is scaled by log-normal noise, so the tracks say "accessible here" for
causal elements and decoys alike.

Hi-C: contact(d) = HIC_SCALE * (1 + d / HIC_D0) ** -HIC_GAMMA with the TSS at distance d bp
(a power law, as in ABC), times log-normal noise per HIC_BIN bp. An insulated element (and
INSULATION_PAD bp either side) has its contact multiplied by INSULATION_FACTOR.
"""

from __future__ import annotations

import numpy as np

BIN = 10
FRAGMENT = {"dnase": 10.0, "h3k27ac": 50.0}
DNASE_SD = 75.0
H3K27AC_OFFSET, H3K27AC_SD = 200.0, 120.0
BACKGROUND_MEAN = {"dnase": 0.15, "h3k27ac": 0.25}
BACKGROUND_SHAPE = 0.5
PEAK_NOISE_SIGMA = 0.2
HIC_SCALE, HIC_D0, HIC_GAMMA = 100.0, 5_000.0, 1.0
HIC_BIN = 100
HIC_NOISE_SIGMA = 0.2
INSULATION_FACTOR = 0.005
INSULATION_PAD = 100


def contact(distance: np.ndarray) -> np.ndarray:
  """Noise-free contact with the TSS: float (...,) for distances float/int (...,) in bp."""
  return HIC_SCALE * (1.0 + np.abs(distance) / HIC_D0) ** -HIC_GAMMA


def _add_gaussian(track: np.ndarray, centre: float, area: float, sd: float) -> None:
  lo = max(0, int((centre - 4 * sd) // BIN))
  hi = min(len(track), int((centre + 4 * sd) // BIN) + 1)
  if hi <= lo:
    return
  x = (np.arange(lo, hi) + 0.5) * BIN
  track[lo:hi] += area * np.exp(-0.5 * ((x - centre) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))


def coverage(rng: np.random.Generator, length: int, track: str, centres: np.ndarray,
             counts: np.ndarray) -> np.ndarray:
  """Count-like coverage of one chromosome: float32 (ceil(length / BIN),) per-bp values.

  track: "dnase" or "h3k27ac"; centres, counts: float (n,) peak centres (bp) and real read
  counts of the chromosome's elements and promoters.
  """
  if track not in FRAGMENT:
    raise ValueError(f"unknown track {track!r}: expected one of {sorted(FRAGMENT)}")
  n_bins = -(-length // BIN)
  mean = BACKGROUND_MEAN[track]
  out = rng.gamma(BACKGROUND_SHAPE, mean / BACKGROUND_SHAPE, size=n_bins)
  noise = rng.lognormal(0.0, PEAK_NOISE_SIGMA, size=len(centres))
  for c, n, z in zip(centres, counts, noise):
    area = n * FRAGMENT[track] * z
    if track == "dnase":
      _add_gaussian(out, c, area, DNASE_SD)
    else:
      _add_gaussian(out, c - H3K27AC_OFFSET, area / 2, H3K27AC_SD)
      _add_gaussian(out, c + H3K27AC_OFFSET, area / 2, H3K27AC_SD)
  return out.astype(np.float32)


def hic_vector(rng: np.random.Generator, window: int, tss: int, chrom_length: int,
               insulated: list[tuple[int, int]]) -> np.ndarray:
  """Contact with the TSS over its window clipped to the chromosome, as the published files
  store it: float32 (hi - lo,) for genome positions [lo, hi) = [max(0, tss - L/2),
  min(chrom_length, tss + L/2)), L = window; insulated [start, end) intervals (genome
  coordinates) damped by INSULATION_FACTOR."""
  half = window // 2
  pos = np.arange(tss - half, tss + half)
  n_bins = -(-window // HIC_BIN)
  noise = np.repeat(rng.lognormal(0.0, HIC_NOISE_SIGMA, size=n_bins), HIC_BIN)[:window]
  # Contact is constant within a Hi-C bin (distance of the bin centre), like binned Hi-C.
  bin_centre = (np.arange(window) // HIC_BIN) * HIC_BIN + HIC_BIN / 2 - half
  out = contact(bin_centre) * noise
  for s, e in insulated:
    lo, hi = max(0, s - INSULATION_PAD - pos[0]), min(window, e + INSULATION_PAD - pos[0])
    out[lo:hi] *= INSULATION_FACTOR
  inside = (pos >= 0) & (pos < chrom_length)
  return out[inside].astype(np.float32)
