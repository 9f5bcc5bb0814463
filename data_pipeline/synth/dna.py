"""Background DNA of the synthetic genome: human-like composition, CpG depletion, CpG-island
promoters, soft-masked repeats and N runs.

Codes: uint8 A=0 C=1 G=2 T=3 N=4. Sequence is drawn base by base at GC 43% and then CpG
dinucleotides are deaminated (CG -> TG or CA) with probability CPG_LOSS, the mutation that
depletes CpG in real vertebrate genomes (final GC about 41%, CpG observed/expected about
0.3); promoters (TSS +- 500 bp) are redrawn as CpG
islands (GC 65%, no depletion).
"""

from __future__ import annotations

import numpy as np

GC = 0.43  # before CpG loss; about 0.41 after it
CPG_LOSS = 0.75
ISLAND_GC = 0.65
ISLAND_HALF = 500
_ASCII_UPPER = np.frombuffer(b"ACGTN", np.uint8)
_ASCII_LOWER = np.frombuffer(b"acgtN", np.uint8)  # N stays upper-case, as in real FASTA


def _iid(rng: np.random.Generator, n: int, gc: float) -> np.ndarray:
  p = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
  return rng.choice(4, size=n, p=p).astype(np.uint8)


def background(rng: np.random.Generator, length: int) -> np.ndarray:
  """uint8 (L,) codes of CpG-depleted background DNA, L = `length`."""
  dna = _iid(rng, length, GC)
  cg = np.flatnonzero((dna[:-1] == 1) & (dna[1:] == 2))
  hit = cg[rng.random(len(cg)) < CPG_LOSS]
  on_top = rng.random(len(hit)) < 0.5
  dna[hit[on_top]] = 3          # C -> T on this strand (CG -> TG)
  dna[hit[~on_top] + 1] = 0     # G -> A: C -> T on the other strand (CG -> CA)
  return dna


def cpg_island(rng: np.random.Generator, length: int) -> np.ndarray:
  """uint8 (L,) codes of a GC-rich, CpG-undepleted promoter island."""
  return _iid(rng, length, ISLAND_GC)


def to_fasta_bytes(dna: np.ndarray, soft_mask: np.ndarray) -> np.ndarray:
  """dna: uint8 (L,) codes, soft_mask: bool (L,) -> uint8 (L,) ASCII (masked bases lower-case)."""
  return np.where(soft_mask, _ASCII_LOWER[dna], _ASCII_UPPER[dna])


def random_intervals(rng: np.random.Generator, length: int, count: int, min_len: int,
                     max_len: int, forbidden: np.ndarray) -> list[tuple[int, int]]:
  """Up to `count` disjoint [start, end) intervals inside [0, length) that avoid every True
  position of `forbidden` (bool (L,)); tries a few times per interval, then gives up on it."""
  taken = forbidden.copy()
  out = []
  for _ in range(count):
    for _ in range(20):
      size = int(rng.integers(min_len, max_len + 1))
      if size >= length:
        break
      start = int(rng.integers(0, length - size))
      if not taken[start:start + size].any():
        taken[start:start + size] = True
        out.append((start, start + size))
        break
  return sorted(out)
