"""Per-base boolean masks from BED intervals (blacklist, include list, MACS3 peaks).

The published set ships the blacklist/include list as Python pickles of per-chromosome per-bp
arrays. Unpickling runs arbitrary code, so `load_mask` reads the BED file by default and
touches a pickle only when the caller passes `allow_pickle=True` (`build-data --allow-pickle`).
"""

from __future__ import annotations

import pathlib
import pickle

import numpy as np

from data_pipeline.errors import DataFormatError, MissingInputError, PickleNotAllowedError


class IntervalMask:
  """Sorted, merged half-open intervals per chromosome; `window` paints them into (L,)."""

  def __init__(self, intervals: dict[str, np.ndarray], source: str = ""):
    """intervals: {chrom: int64 (K, 2) [start, end) rows}, any order, may overlap."""
    self.source = source
    self._starts: dict[str, np.ndarray] = {}
    self._ends: dict[str, np.ndarray] = {}
    for chrom, iv in intervals.items():
      iv = np.asarray(iv, dtype=np.int64).reshape(-1, 2)
      iv = iv[np.argsort(iv[:, 0], kind="stable")]
      # Merge overlaps so each window needs one searchsorted per side.
      if len(iv):
        ends = np.maximum.accumulate(iv[:, 1])
        new = np.ones(len(iv), bool)
        new[1:] = iv[1:, 0] > ends[:-1]
        group = np.cumsum(new) - 1
        starts = iv[new, 0]
        merged_ends = np.zeros(len(starts), np.int64)
        np.maximum.at(merged_ends, group, ends)
        self._starts[chrom], self._ends[chrom] = starts, merged_ends

  @property
  def chroms(self) -> list[str]:
    return sorted(self._starts)

  def intervals(self, chrom: str) -> tuple[np.ndarray, np.ndarray]:
    """int64 (K,) starts and ends of the merged intervals of `chrom` (empty if unknown)."""
    empty = np.zeros(0, np.int64)
    return self._starts.get(chrom, empty), self._ends.get(chrom, empty)

  def window(self, chrom: str, start: int, end: int) -> np.ndarray:
    """Returns bool (end-start,), True inside any interval; False for unknown chromosomes
    and beyond the chromosome ends."""
    out = np.zeros(end - start, dtype=bool)
    starts = self._starts.get(chrom)
    if starts is None:
      return out
    ends = self._ends[chrom]
    first = np.searchsorted(ends, start, side="right")  # first interval ending after start
    last = np.searchsorted(starts, end, side="left")  # intervals starting before end
    for s, e in zip(starts[first:last], ends[first:last]):
      out[max(s, start) - start:min(e, end) - start] = True
    return out


def read_interval_bed(path: str | pathlib.Path) -> IntervalMask:
  """Reads a BED file (chrom, start, end, ...; track/browser/# lines ignored)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise MissingInputError(f"{path}: BED file not found")
  per_chrom: dict[str, list[tuple[int, int]]] = {}
  with path.open() as f:
    for line_no, line in enumerate(f, 1):
      if not line.strip() or line.startswith(("#", "track", "browser")):
        continue
      fields = line.split("\t") if "\t" in line else line.split()
      if len(fields) < 3:
        raise DataFormatError(f"{path}: line {line_no} has {len(fields)} fields, expected at "
                              "least 3 (chrom, start, end)")
      try:
        start, end = int(fields[1]), int(fields[2])
      except ValueError:
        raise DataFormatError(f"{path}: line {line_no}: start/end {fields[1:3]} are not "
                              "integers") from None
      if start < 0 or end < start:
        raise DataFormatError(f"{path}: line {line_no}: bad interval [{start}, {end})")
      per_chrom.setdefault(fields[0], []).append((start, end))
  return IntervalMask({c: np.array(v, np.int64) for c, v in per_chrom.items()}, str(path))


def _runs(mask: np.ndarray) -> np.ndarray:
  """bool (L,) -> int64 (K, 2) [start, end) of the runs of True."""
  padded = np.concatenate([[False], mask.astype(bool), [False]])
  edges = np.flatnonzero(padded[1:] != padded[:-1])
  return edges.reshape(-1, 2)


def read_pickle(path: str | pathlib.Path, allow_pickle: bool = False) -> IntervalMask:
  """Reads a pickled {chrom: per-bp 0/1 array} mask; refuses unless `allow_pickle`."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise MissingInputError(f"{path}: mask pickle not found")
  if not allow_pickle:
    raise PickleNotAllowedError(
        f"{path}: refusing to unpickle (loading a pickle runs code stored in it); pass "
        "--allow-pickle if you trust this file, or provide the mask as a BED file")
  with path.open("rb") as f:
    data = pickle.load(f)  # the caller opted in explicitly
  if not isinstance(data, dict):
    raise DataFormatError(f"{path}: expected a pickled dict {{chrom: per-bp array}}, got "
                          f"{type(data).__name__}")
  intervals = {}
  for chrom, arr in data.items():
    arr = np.asarray(arr)
    if arr.ndim != 1:
      raise DataFormatError(f"{path}: {chrom!r} has shape {arr.shape}, expected a 1-D "
                            "per-bp mask")
    intervals[str(chrom)] = _runs(arr != 0)
  return IntervalMask(intervals, str(path))


def load_mask(bed: pathlib.Path, pickle_path: pathlib.Path,
              allow_pickle: bool = False) -> IntervalMask:
  """The mask from `bed` if it exists, else from `pickle_path` (only with `allow_pickle`)."""
  if bed.is_file():
    return read_interval_bed(bed)
  if pickle_path.is_file():
    if not allow_pickle:
      raise PickleNotAllowedError(
          f"{bed}: not found, and the mask exists only as the pickle {pickle_path}; loading "
          "a pickle runs code stored in it, so pass --allow-pickle if you trust it, or "
          f"provide {bed.name}")
    return read_pickle(pickle_path, allow_pickle=True)
  raise MissingInputError(f"{bed}: mask not found (neither BED nor pickle {pickle_path.name})")
