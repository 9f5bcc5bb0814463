"""Reads the known answers of a synthetic data set: which bases are causal or decoy.

`read_truth` turns truth/causal_elements.bed and truth/decoys.bed into a per-base code for
any interval, so mask quality (AUPRC, precision at the mask ratio) can be scored on the
same windows the model reads.
"""

from __future__ import annotations

import functools
import pathlib

import numpy as np

from data_pipeline.errors import DataFormatError, MissingInputError
from data_pipeline import io
from data_pipeline.layout import GENOME, GeneExpLayout

CAUSAL, DECOY = 1, 2


class TruthFormatError(DataFormatError):
  """A truth file is missing a field or holds a bad value."""


@functools.lru_cache(maxsize=8)
def _intervals(bed: str, mtime_ns: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """chrom -> (starts, ends), int64 (n,) each, sorted by start."""
  del mtime_ns  # part of the cache key only: a rewritten file is read again
  by_chrom: dict[str, list[tuple[int, int]]] = {}
  with open(bed) as fh:
    for lineno, line in enumerate(fh, 1):
      if not line.strip() or line.startswith(("#", "track", "browser")):
        continue
      fields = line.rstrip("\n").split("\t")
      try:
        start, end = int(fields[1]), int(fields[2])
      except (IndexError, ValueError):
        raise TruthFormatError(
            f"{bed} line {lineno}: expected 'chrom<TAB>start<TAB>end', got {line.strip()!r}"
        ) from None
      if not 0 <= start < end:
        raise TruthFormatError(f"{bed} line {lineno}: expected 0 <= start < end, "
                               f"got {start}, {end}")
      by_chrom.setdefault(fields[0], []).append((start, end))
  return {c: tuple(np.array(sorted(v), np.int64).T) for c, v in by_chrom.items()}


@functools.lru_cache(maxsize=8)
def _chrom_lengths(path: str, mtime_ns: int) -> dict[str, int]:
  del mtime_ns  # part of the cache key: a rewritten file is read again
  return io.read_chrom_lengths(path, GENOME)


def _load(path: pathlib.Path, reader):
  if not path.is_file():
    raise MissingInputError(f"{path}: truth file not found (is this a synthetic data set?)")
  return reader(str(path), path.stat().st_mtime_ns)


def read_truth(layout: GeneExpLayout, chrom: str, start: int, end: int) -> np.ndarray:
  """Per-base truth of [start, end) on `chrom`: uint8 (end - start,), 1 = causal element,
  2 = decoy, 0 = anything else, including positions before 0 or past the chromosome end."""
  if end < start:
    raise ValueError(f"read_truth: end {end} < start {start}")
  lengths = _load(layout.chr_length_json, _chrom_lengths)
  if chrom not in lengths:
    raise KeyError(f"{layout.chr_length_json}: no chromosome {chrom!r}")
  out = np.zeros(end - start, np.uint8)
  for bed, code in ((layout.decoy_bed, DECOY), (layout.causal_bed, CAUSAL)):
    starts, ends = _load(bed, _intervals).get(chrom, (np.zeros(0, np.int64),) * 2)
    # Intervals are disjoint within a file, so those overlapping [start, end) are contiguous
    # once sorted; an interval cannot end past the next one's start.
    first = np.searchsorted(ends, start, side="right")
    last = np.searchsorted(starts, end, side="left")
    for s, e in zip(starts[first:last], ends[first:last]):
      out[max(s, start) - start:min(e, end) - start] = code
  lo, hi = max(0, -start), max(0, min(end - start, lengths[chrom] - start))
  out[:lo] = 0
  out[hi:] = 0
  return out
