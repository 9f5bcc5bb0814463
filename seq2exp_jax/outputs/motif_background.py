"""The regions a motif scan compares discovered elements with: the elements themselves read
from a BED (overlaps merged, so no DNA counts twice), background regions matched in length
and GC content near them, or dinucleotide-shuffled copies of them.

Matched (`matched_background`): for each element, CANDIDATES random intervals of its
length on its chromosome within `flank` bp of it, none overlapping an element or an
already chosen background region, none with more N than max(MAX_N_FRACTION, the
element's); the `per_element` candidates whose GC content (of the non-N bases) is closest
to the element's are kept. Seeded: the same inputs and seed give the same regions.

Shuffled (`shuffled_background`): each element's sequence permuted keeping its exact
dinucleotide counts and its first and last base (Altschul & Erickson 1985, by the random
Eulerian walk of Kandel et al. 1996, as MEME's fasta-shuffle-letters -kmer 2 and uShuffle
do), so GC content and CpG depletion stay and only the order, and the motifs, go.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np
from jaxtyping import UInt8

from data_pipeline.errors import DataFormatError, MissingInputError
from data_pipeline.readers.genome import Genome
from seq2exp_jax.outputs import genome_tracks

CANDIDATES = 50  # random intervals drawn per element, the closest in GC kept
MAX_N_FRACTION = 0.1
N_CODE = 4


@dataclasses.dataclass(frozen=True)
class Region:
  """[start, end) of `chrom`, 0-based half-open; `gc` of its non-N bases (NaN if none)."""

  chrom: str
  start: int
  end: int
  gc: float = float("nan")


def _data_lines(path: pathlib.Path) -> list[tuple[int, str]]:
  """(line number, text) of the lines `genome_tracks.read_elements` reads, in order."""
  return [(n, line) for n, line in enumerate(path.read_text().splitlines(), start=1)
          if line.strip() and not line.startswith(("#", "track", "browser"))]


def read_regions(path: str | os.PathLike, lengths: dict[str, int]) -> list[Region]:
  """The intervals of a BED3+ file, overlapping or touching ones merged, sorted; every
  chromosome must be in `lengths` ({name: bp}, the FASTA's) and every end within it."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise MissingInputError(f"{path}: BED file of elements not found")
  try:
    elements = genome_tracks.read_elements(path)
  except (ValueError, UnicodeDecodeError) as e:
    raise DataFormatError(str(e) if str(path) in str(e) else f"{path}: {e}") from None
  for (n, line), e in zip(_data_lines(path), elements):
    if e.chrom not in lengths:
      raise DataFormatError(
          f"{path}: line {n}: chromosome {e.chrom!r} is not in the genome FASTA (it has "
          f"{', '.join(sorted(lengths)[:5])}{' ...' if len(lengths) > 5 else ''})")
    if e.end > lengths[e.chrom]:
      raise DataFormatError(f"{path}: line {n} {line.strip()!r}: end {e.end} is past the end "
                            f"of {e.chrom} ({lengths[e.chrom]} bp)")
  if not elements:
    raise DataFormatError(f"{path}: no intervals (expected BED lines 'chrom start end ...')")
  merged: list[Region] = []
  for e in sorted(elements, key=lambda e: (e.chrom, e.start, e.end)):
    if merged and merged[-1].chrom == e.chrom and e.start <= merged[-1].end:
      last = merged.pop()
      merged.append(Region(e.chrom, last.start, max(last.end, e.end)))
    else:
      merged.append(Region(e.chrom, e.start, e.end))
  return merged


def gc_content(codes: UInt8[np.ndarray, "L"]) -> float:
  """Fraction of C or G among the non-N bases (NaN when all are N)."""
  known = codes < N_CODE
  return float(((codes == 1) | (codes == 2)).sum() / known.sum()) if known.any() else np.nan


def sequences(genome: Genome, regions: list[Region]) -> list[np.ndarray]:
  """uint8 codes of every region, in order."""
  return [genome.window(r.chrom, r.start, r.end) for r in regions]


def _overlaps(start: int, end: int, starts: np.ndarray, ends: np.ndarray) -> bool:
  """[start, end) overlaps one of the sorted, disjoint intervals [starts, ends)?"""
  i = int(np.searchsorted(ends, start, side="right"))
  return i < len(starts) and starts[i] < end


def matched_background(genome: Genome, elements: list[Region], *, per_element: int,
                       flank: int, seed: int) -> list[Region]:
  """Background regions matched to `elements` (merged, sorted) in length and GC, as the
  module docstring says; sorted by position. Elements with no room get none."""
  rng = np.random.default_rng(seed)
  by_chrom: dict[str, list[Region]] = {}
  for e in elements:
    by_chrom.setdefault(e.chrom, []).append(e)
  chosen: list[Region] = []
  for chrom, regions in by_chrom.items():
    starts = np.array([r.start for r in regions])
    ends = np.array([r.end for r in regions])
    taken: list[tuple[int, int]] = []  # chosen background of this chromosome
    for e in regions:
      n = e.end - e.start
      lo = max(0, e.start - flank)
      hi = min(genome.lengths[chrom], e.end + flank) - n  # last start
      if hi < lo:
        continue
      dna = genome.window(chrom, lo, hi + n)
      gc_cum = np.concatenate([[0], np.cumsum((dna == 1) | (dna == 2))])
      n_cum = np.concatenate([[0], np.cumsum(dna == N_CODE)])
      own = dna[e.start - lo:e.end - lo]
      target, own_n = gc_content(own), float((own == N_CODE).mean())
      offered = []
      for c in rng.integers(lo, hi + 1, size=CANDIDATES):
        i = int(c) - lo
        n_bad = n_cum[i + n] - n_cum[i]
        if n_bad > max(MAX_N_FRACTION, own_n) * n or n_bad == n:
          continue
        if _overlaps(int(c), int(c) + n, starts, ends):
          continue
        gc = float((gc_cum[i + n] - gc_cum[i]) / (n - n_bad))
        offered.append((abs(gc - target) if np.isfinite(target) else 0.0, int(c), gc))
      kept = 0
      for _, c, gc in sorted(offered):
        if kept == per_element:
          break
        if any(c < t_end and t_start < c + n for t_start, t_end in taken):
          continue
        taken.append((c, c + n))
        chosen.append(Region(chrom, c, c + n, gc))
        kept += 1
  return sorted(chosen, key=lambda r: (r.chrom, r.start))


def dinucleotide_shuffle(codes: UInt8[np.ndarray, "L"], rng: np.random.Generator
                         ) -> UInt8[np.ndarray, "L"]:
  """A random permutation of `codes` with the same dinucleotide counts, first and last
  base: a random Eulerian walk over its dinucleotide graph (N is a fifth letter)."""
  codes = np.asarray(codes, np.uint8)
  if len(codes) <= 2:
    return codes.copy()
  edges = {int(v): [int(t) for t in codes[1:][codes[:-1] == v]]
           for v in np.unique(codes[:-1])}
  last = int(codes[-1])
  # Wilson's algorithm: a uniformly random arborescence of last edges rooted at `last`.
  in_tree, successor = {last: True}, {}
  for u in edges:
    v = u
    while not in_tree.get(v, False):
      successor[v] = int(rng.integers(len(edges[v])))
      v = edges[v][successor[v]]
    v = u
    while not in_tree.get(v, False):
      in_tree[v] = True
      v = edges[v][successor[v]]
  order = {}
  for v, targets in edges.items():
    targets = list(targets)
    tail = [targets.pop(successor[v])] if v in successor else []
    rng.shuffle(targets)
    order[v] = targets + tail
  out = np.empty(len(codes), np.uint8)
  out[0] = previous = int(codes[0])
  used = dict.fromkeys(order, 0)
  for i in range(1, len(codes)):
    out[i] = following = order[previous][used[previous]]
    used[previous] += 1
    previous = following
  return out


def shuffled_background(element_sequences: list[UInt8[np.ndarray, "_"]], *,
                        per_element: int, seed: int) -> list[np.ndarray]:
  """`per_element` dinucleotide shuffles of every element sequence, seeded."""
  rng = np.random.default_rng(seed)
  return [dinucleotide_shuffle(codes, rng) for codes in element_sequences
          for _ in range(per_element)]


def write_bed(path: str | os.PathLike, regions: list[Region], name: str) -> None:
  """BED6 of `regions` (named `name`, score round(1000 x GC)); atomic."""
  genome_tracks.write_elements(path, [
      genome_tracks.Element(r.chrom, r.start, r.end, name,
                            r.gc if np.isfinite(r.gc) else 0.0) for r in regions])
