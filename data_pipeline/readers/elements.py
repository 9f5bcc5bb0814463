"""Candidate elements of a gene, EPInformer's input (docs/data.md, "Candidate elements").

Made as EPInformer's `encode_promoter_enhancer_links` makes them (Seq2Exp's
src/dataloaders/utils/epinformer.py): slot 0 is the promoter [tss - W/2, tss + W/2); then the
candidates with W/2 < distance <= ELEMENT_RADIUS, distance = |(start + end) / 2 - tss| (ABC's
distance), nearest first (ties by start), at most MAX_ELEMENTS. An element longer than W is
cut to [c - W/2, c + W/2), c = (start + end) // 2; a shorter one is placed from W/2 - len // 2
of its slot, the rest N (code 4, all-zero one-hot). Features, as EPInformer's PE_feat:
distance / 1000, log10(1 + Hi-C contact with the TSS at c) (the gene's per-bp vector of
readers/hic.py; 0 where it does not reach), activity. Slot 0's features are 0.

Candidates come from ABC's EnhancerList.txt beside the gene table when it exists (activity =
its activity_base column, or sqrt(H3K27ac.RPM x DHS.RPM) without one), otherwise from the
MACS3 DNase peaks build-data calls (activity = sqrt(mean H3K27ac x mean DNase) over the peak,
from the bigWigs).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import pathlib

import numpy as np
from jaxtyping import Float, Int

from data_pipeline.batch import (ELEMENT_RADIUS, ELEMENT_SLOTS, ELEMENT_WIDTH, MAX_ELEMENTS,
                                 NUM_ELEMENT_FEATURES)
from data_pipeline.errors import DataFormatError, MissingInputError
from data_pipeline.layout import GeneExpLayout
from data_pipeline.readers.bigwig import BigWigTrack
from data_pipeline.readers.genome import N, Genome
from data_pipeline.readers.hic import HicReader
from data_pipeline.readers.masks import IntervalMask
from data_pipeline.readers.tables import Gene

# Where the candidates came from (the data set's metadata key `elements_source`).
SOURCE_ABC = "abc_enhancer_list"
SOURCE_PEAKS = "macs3_dnase_peaks"
ABC_COLUMNS = ("chr", "start", "end", "name", "class")
ABC_ACTIVITY = "activity_base"
ABC_RPM = ("H3K27ac.RPM", "DHS.RPM")  # activity = sqrt of their product without activity_base


@dataclasses.dataclass(frozen=True)
class Candidates:
  """The E candidate elements of one chromosome: [start, end) and activity."""

  start: Int[np.ndarray, "E"]
  end: Int[np.ndarray, "E"]
  activity: Float[np.ndarray, "E"]


@dataclasses.dataclass(frozen=True)
class CandidateList:
  """Every chromosome's candidates, their `source` (SOURCE_ABC or SOURCE_PEAKS) and file."""

  source: str
  path: pathlib.Path
  chroms: dict[str, Candidates]


def _candidates(rows: dict[str, list[tuple[int, int, float]]]) -> dict[str, Candidates]:
  out = {}
  for chrom, r in rows.items():
    start, end, activity = zip(*r)
    out[chrom] = Candidates(np.array(start, np.int64), np.array(end, np.int64),
                            np.array(activity, np.float64))
  return out


def _number(path: pathlib.Path, line_no: int, fields: list[str], col: dict[str, int],
            name: str, kind: type) -> int | float:
  text = fields[col[name]].strip()
  try:
    value = kind(text)
  except ValueError:
    value = None
  if value is None or not math.isfinite(value) or value < 0:
    what = "a non-negative integer" if kind is int else "a finite number >= 0"
    raise DataFormatError(f"{path}: line {line_no}: {name} {text!r}: expected {what}")
  return value


def read_enhancer_list(path: str | pathlib.Path) -> CandidateList:
  """ABC's EnhancerList.txt: tab-separated, header first, with columns ABC_COLUMNS and
  activity_base (or both ABC_RPM columns); other columns are ignored."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise MissingInputError(f"{path}: ABC EnhancerList not found")
  expected = ", ".join(ABC_COLUMNS + (ABC_ACTIVITY,))
  rows: dict[str, list[tuple[int, int, float]]] = {}
  with path.open(newline="") as f:
    lines = csv.reader(f, delimiter="\t")
    header = [h.strip() for h in next(lines, [])]
    col = {name: i for i, name in enumerate(header)}
    missing = [c for c in ABC_COLUMNS if c not in col]
    if missing:
      raise DataFormatError(f"{path}: no column {missing[0]!r} in the header line; expected "
                            f"ABC's EnhancerList columns {expected} (tab-separated)")
    rpm = ABC_ACTIVITY not in col
    if rpm and not all(c in col for c in ABC_RPM):
      raise DataFormatError(f"{path}: no column {ABC_ACTIVITY!r} (nor both {ABC_RPM[0]!r} and "
                            f"{ABC_RPM[1]!r} to compute it); expected ABC's EnhancerList "
                            f"columns {expected} (tab-separated)")
    for line_no, fields in enumerate(lines, 2):
      if not any(v.strip() for v in fields):
        continue
      if len(fields) < len(header):
        raise DataFormatError(f"{path}: line {line_no} has {len(fields)} fields, the header "
                              f"{len(header)}; expected tab-separated {expected}")
      start, end = (_number(path, line_no, fields, col, k, int) for k in ("start", "end"))
      if end <= start:
        raise DataFormatError(f"{path}: line {line_no}: element [{start}, {end}): expected "
                              "start < end")
      if rpm:
        activity = math.sqrt(_number(path, line_no, fields, col, ABC_RPM[0], float)
                             * _number(path, line_no, fields, col, ABC_RPM[1], float))
      else:
        activity = _number(path, line_no, fields, col, ABC_ACTIVITY, float)
      rows.setdefault(fields[col["chr"]].strip(), []).append((start, end, activity))
  return CandidateList(SOURCE_ABC, path, _candidates(rows))


def peak_candidates(peaks: IntervalMask, h3k27ac: BigWigTrack,
                    dnase: BigWigTrack) -> CandidateList:
  """The (merged) DNase peaks of every chromosome they cover as candidates, activity
  sqrt(mean H3K27ac x mean DNase) over each peak (negative means count as 0)."""
  rows: dict[str, list[tuple[int, int, float]]] = {}
  for chrom in peaks.chroms:
    for s, e in zip(*peaks.intervals(chrom)):
      h = max(float(h3k27ac.window(chrom, int(s), int(e)).mean()), 0.0)
      d = max(float(dnase.window(chrom, int(s), int(e)).mean()), 0.0)
      rows.setdefault(chrom, []).append((int(s), int(e), math.sqrt(h * d)))
  return CandidateList(SOURCE_PEAKS, pathlib.Path(peaks.source), _candidates(rows))


def load_candidates(layout: GeneExpLayout, peaks: IntervalMask | None, h3k27ac: BigWigTrack,
                    dnase: BigWigTrack) -> CandidateList:
  """ABC's EnhancerList.txt if the layout has one, else the DNase `peaks`."""
  if layout.enhancer_list.is_file():
    return read_enhancer_list(layout.enhancer_list)
  if peaks is None:
    raise MissingInputError(f"{layout.enhancer_list}: not found, and no DNase peaks were "
                            "given to take the candidate elements from")
  return peak_candidates(peaks, h3k27ac, dnase)


def nearest(candidates: Candidates, tss: int) -> Int[np.ndarray, "K"]:
  """Indices of the (K <= MAX_ELEMENTS) candidates with W/2 < distance <= ELEMENT_RADIUS,
  nearest first, ties by start."""
  distance = np.abs((candidates.start + candidates.end) / 2 - tss)
  keep = np.flatnonzero((distance > ELEMENT_WIDTH / 2) & (distance <= ELEMENT_RADIUS))
  order = np.lexsort((candidates.start[keep], distance[keep]))
  return keep[order][:MAX_ELEMENTS]


class ElementReader:
  """The element fields of each gene from the candidates, the genome and the Hi-C files
  (opened by the caller, e.g. `WindowReader`)."""

  def __init__(self, candidates: CandidateList, genome: Genome, hic: HicReader,
               chrom_lengths: dict[str, int]):
    self.candidates = candidates
    self.genome, self.hic, self.chrom_lengths = genome, hic, chrom_lengths

  def read(self, gene: Gene) -> dict[str, np.ndarray]:
    """element_dna uint8 (M, W) codes (N = 4 beyond the sequence), element_feat float32
    (M, G), element_valid bool (M,), element_pos int64 (M, 2) (-1 in empty slots)."""
    half = ELEMENT_WIDTH // 2
    dna = np.full((ELEMENT_SLOTS, ELEMENT_WIDTH), N, np.uint8)
    feat = np.zeros((ELEMENT_SLOTS, NUM_ELEMENT_FEATURES), np.float32)
    valid = np.zeros(ELEMENT_SLOTS, bool)
    pos = np.full((ELEMENT_SLOTS, 2), -1, np.int64)
    chrom, tss = gene.chrom, gene.tss
    dna[0] = self.genome.window(chrom, tss - half, tss + half)
    valid[0], pos[0] = True, (tss - half, tss + half)
    found = self.candidates.chroms.get(chrom)
    idx = np.zeros(0, np.int64) if found is None else nearest(found, tss)
    if len(idx):
      start, end = found.start[idx], found.end[idx]
      centre = (start + end) // 2
      for slot, (s, e, c) in enumerate(zip(start, end, centre), 1):
        lo, hi, at = (c - half, c + half, 0) if e - s > ELEMENT_WIDTH else (
            s, e, half - (e - s) // 2)
        dna[slot, at:at + hi - lo] = self.genome.window(chrom, int(lo), int(hi))
        pos[slot] = lo, hi
      k = slice(1, len(idx) + 1)
      feat[k, 0] = np.abs((start + end) / 2 - tss) / 1000
      lo, hi = int(centre.min()), int(centre.max()) + 1
      contact = self.hic.window(chrom, tss, lo, hi, self.chrom_lengths[chrom])
      feat[k, 1] = contact[centre - lo]  # already log10(1 + contact)
      feat[k, 2] = found.activity[idx]
      valid[k] = True
    return {"element_dna": dna, "element_feat": feat, "element_valid": valid,
            "element_pos": pos}
