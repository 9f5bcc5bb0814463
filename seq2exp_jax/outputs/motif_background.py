"""The regions a motif scan compares discovered elements with: the elements themselves read
from a BED (overlaps merged, so no DNA counts twice), and background regions of three kinds.

Every drawn background region has its element's length. For each element CANDIDATES
intervals are proposed; those overlapping an element or an already chosen background
region, or holding more N than max(MAX_N_FRACTION, the element's), are dropped, and the
`per_element` whose GC content (of the non-N bases) is closest to the element's are kept.
Seeded: the same inputs and seed give the same regions.

* Matched (`matched_background`): proposals at random on the element's chromosome within
  `flank` bp of it.
* A user's BED (`bed_background`, as HOMER's -bg): proposals centred on random regions of
  the BED that overlap no element, e.g. every accessible candidate element, which asks
  whether the elements prefer a motif beyond being accessible.
* Shuffled (`shuffled_background`): each element's sequence permuted keeping its exact
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


def _spans(regions: list[Region]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{chrom: (starts, ends)} of merged, sorted regions."""
  out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
  for chrom in dict.fromkeys(r.chrom for r in regions):
    mine = [r for r in regions if r.chrom == chrom]
    out[chrom] = (np.array([r.start for r in mine]), np.array([r.end for r in mine]))
  return out


def outside(regions: list[Region], elements: list[Region]) -> list[Region]:
  """The `regions` that overlap no element (`elements` merged and sorted)."""
  spans = _spans(elements)
  return [r for r in regions
          if r.chrom not in spans or not _overlaps(r.start, r.end, *spans[r.chrom])]


def _choose(genome: Genome, elements: list[Region], propose, per_element: int
            ) -> list[Region]:
  """For each element, the `per_element` best of `propose(element)`'s [(chrom, start)]
  (see the module docstring); sorted by position."""
  spans = _spans(elements)
  taken: dict[str, list[tuple[int, int]]] = {}
  chosen: list[Region] = []
  for e in elements:
    n = e.end - e.start
    own = genome.window(e.chrom, e.start, e.end)
    target, own_n = gc_content(own), float((own == N_CODE).mean())
    offered = []
    for chrom, c in propose(e):
      if c < 0 or c + n > genome.lengths[chrom]:
        continue
      if chrom in spans and _overlaps(c, c + n, *spans[chrom]):
        continue
      dna = genome.window(chrom, c, c + n)
      n_bad = int((dna == N_CODE).sum())
      if n_bad > max(MAX_N_FRACTION, own_n) * n or n_bad == n:
        continue
      gc = gc_content(dna)
      offered.append((abs(gc - target) if np.isfinite(target) else 0.0, chrom, c, gc))
    kept = 0
    for _, chrom, c, gc in sorted(offered):
      if kept == per_element:
        break
      if any(c < t_end and t_start < c + n for t_start, t_end in taken.get(chrom, [])):
        continue
      taken.setdefault(chrom, []).append((c, c + n))
      chosen.append(Region(chrom, c, c + n, gc))
      kept += 1
  return sorted(chosen, key=lambda r: (r.chrom, r.start))


def matched_background(genome: Genome, elements: list[Region], *, per_element: int,
                       flank: int, seed: int) -> list[Region]:
  """Regions matched to `elements` (merged, sorted) in length and GC within `flank` bp of
  each; elements with no room get none."""
  rng = np.random.default_rng(seed)

  def propose(e: Region) -> list[tuple[str, int]]:
    lo = max(0, e.start - flank)
    hi = min(genome.lengths[e.chrom], e.end + flank) - (e.end - e.start)  # last start
    return [] if hi < lo else [(e.chrom, int(c))
                               for c in rng.integers(lo, hi + 1, size=CANDIDATES)]
  return _choose(genome, elements, propose, per_element)


def bed_background(genome: Genome, elements: list[Region], regions: list[Region], *,
                   per_element: int, seed: int) -> list[Region]:
  """Regions matched to `elements` in length and GC, each centred on one of `regions`
  (a user's BED, merged) that overlaps no element."""
  rng = np.random.default_rng(seed)
  pool = outside(regions, elements)

  def propose(e: Region) -> list[tuple[str, int]]:
    if not pool:
      return []
    n = e.end - e.start
    return [(pool[i].chrom, (pool[i].start + pool[i].end) // 2 - n // 2)
            for i in rng.integers(len(pool), size=CANDIDATES)]
  return _choose(genome, elements, propose, per_element)


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
