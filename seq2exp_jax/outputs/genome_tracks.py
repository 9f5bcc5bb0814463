"""Genome tracks of learned masks: element calling, BED and bigWig export.

A gene's window is L bases [tss - L//2, tss + L//2) of its chromosome (0-based, half-open),
so window index i is genome position `window_start(tss, L) + i`. The model's per-base mask
(L,) in [0, 1] becomes:

* elements (`elements_from_mask` -> `write_elements`): maximal runs with mask >= threshold,
  clipped to the chromosome, the promoter left out with `ignore=promoter_positions(...)`;
* a bigWig of the mask (`write_mask_bigwig`): windows of neighbouring genes overlap, and
  where they do the maximum is written; memory grows with the windows, not the chromosome.

Every file is written atomically: to a temp file in the same directory, then `os.replace`.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Iterable, Iterator

import numpy as np
import pyBigWig

from data_pipeline.io import atomic_output

# Windows of one cluster are max-combined this many bases at a time (4 MiB of float32).
BLOCK_BASES = 1 << 20


def window_start(tss: int, length: int) -> int:
  """Genome position of window index 0 of the L = `length` window centred on `tss`."""
  return tss - length // 2


def mask_runs(mask, threshold: float, *, min_length: int = 1,
              ignore=None) -> list[tuple[int, int, float, float]]:
  """Maximal runs of `mask >= threshold`, as (start, end, mean, max) in window coordinates.

  mask: float (L,). ignore: optional bool (L,), positions never reported (they split runs).
  Runs shorter than `min_length` are dropped; NaN counts as below the threshold.
  """
  mask = np.asarray(mask, np.float64)
  if mask.ndim != 1:
    raise ValueError(f"mask: expected shape (L,), got {mask.shape}")
  if min_length < 1:
    raise ValueError(f"min_length {min_length}: expected >= 1")
  on = mask >= threshold
  if ignore is not None:
    ignore = np.asarray(ignore)
    if ignore.shape != mask.shape or ignore.dtype != np.bool_:
      raise ValueError(f"ignore: expected bool {mask.shape}, got {ignore.dtype} {ignore.shape}")
    on &= ~ignore
  edges = np.diff(np.concatenate(([0], on.astype(np.int8), [0])))
  starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
  keep = ends - starts >= min_length
  starts, ends = starts[keep], ends[keep]
  if len(starts) == 0:
    return []
  cumsum = np.concatenate(([0.0], np.cumsum(np.where(on, mask, 0.0))))
  means = (cumsum[ends] - cumsum[starts]) / (ends - starts)
  # reduceat over [start_0, end_0, start_1, ...] gives the max of every run at even indices;
  # the appended -inf makes end = L a valid index.
  bounds = np.column_stack([starts, ends]).ravel()
  maxes = np.maximum.reduceat(np.append(mask, -np.inf), bounds)[::2]
  return [(int(s), int(e), float(m), float(x))
          for s, e, m, x in zip(starts, ends, means, maxes)]


@dataclasses.dataclass(frozen=True)
class Element:
  """A called element in genome coordinates [start, end); `name` is the gene it was called
  for, `score` the mean mask over it (in [0, 1])."""

  chrom: str
  start: int
  end: int
  name: str
  score: float


def elements_from_mask(chrom: str, tss: int, mask, name: str, *, threshold: float,
                       min_length: int = 1, ignore=None,
                       chrom_length: int | None = None) -> list[Element]:
  """The runs of `mask_runs` as genome-coordinate elements of the window centred on `tss`.

  mask: float (L,). ignore: optional bool (L,) (e.g. `promoter_positions(L, center_len)`).
  Bases outside [0, chrom_length) (or < 0 when `chrom_length` is None) are never part of an
  element, so runs are clipped to the chromosome and scored over the clipped part.
  """
  mask = np.asarray(mask)
  if mask.ndim != 1:
    raise ValueError(f"mask of {name}: expected shape (L,), got {mask.shape}")
  offset = window_start(tss, len(mask))
  positions = offset + np.arange(len(mask))
  outside = positions < 0
  if chrom_length is not None:
    outside |= positions >= chrom_length
  if ignore is not None:
    ignore = np.asarray(ignore)
    if ignore.shape != mask.shape or ignore.dtype != np.bool_:
      raise ValueError(f"ignore of {name}: expected bool {mask.shape}, got {ignore.dtype} "
                       f"{ignore.shape}")
    outside |= ignore
  runs = mask_runs(mask, threshold, min_length=min_length, ignore=outside)
  return [Element(chrom, offset + s, offset + e, name, mean) for s, e, mean, _ in runs]


def bed_line(element: Element) -> str:
  """One BED6 line (with newline); score round(1000 * score) clipped to 0..1000."""
  e = element
  if not 0 <= e.start < e.end:
    raise ValueError(f"element {e}: expected 0 <= start < end")
  for field, value in (("chrom", e.chrom), ("name", e.name)):
    if not value or any(c.isspace() for c in value):
      raise ValueError(f"element {e}: {field} {value!r} must be non-empty without whitespace")
  if not np.isfinite(e.score):
    raise ValueError(f"element {e}: score must be finite")
  score = int(np.clip(round(1000 * e.score), 0, 1000))
  return f"{e.chrom}\t{e.start}\t{e.end}\t{e.name}\t{score}\t.\n"


def write_elements(path: str | os.PathLike, elements: Iterable[Element]) -> None:
  """Writes plain BED6 (no track line), sorted by (chrom, start, end, name); atomic."""
  ordered = sorted(elements, key=lambda e: (e.chrom, e.start, e.end, e.name))
  text = "".join(bed_line(e) for e in ordered)
  with atomic_output(path) as tmp:
    tmp.write_text(text)


def read_elements(path: str | os.PathLike) -> list[Element]:
  """Reads BED3+ lines (track/browser/# lines skipped) as Elements; a BED score s becomes
  s / 1000, a missing name '.', a missing score 0."""
  path = pathlib.Path(path)
  out = []
  for n, line in enumerate(path.read_text().splitlines(), start=1):
    if not line.strip() or line.startswith(("#", "track", "browser")):
      continue
    fields = line.split("\t")
    try:
      if len(fields) < 3:
        raise ValueError(f"expected >= 3 tab-separated fields, got {len(fields)}")
      start, end = int(fields[1]), int(fields[2])
      if not 0 <= start < end:
        raise ValueError(f"expected 0 <= start < end, got {start}, {end}")
      score = float(fields[4]) / 1000 if len(fields) > 4 else 0.0
    except ValueError as e:
      raise ValueError(f"{path}: line {n} {line!r}: {e}") from e
    out.append(Element(fields[0], start, end, fields[3] if len(fields) > 3 else ".", score))
  return out


def _clipped_windows(chrom_sizes: dict[str, int], windows) -> dict[str, list]:
  """{chrom: [(start, float32 values)]} with every window clipped to [0, chrom size)."""
  per_chrom: dict[str, list] = {c: [] for c in chrom_sizes}
  for chrom, start, values in windows:
    if chrom not in chrom_sizes:
      raise ValueError(f"window at {chrom}:{start}: chromosome {chrom!r} not in chrom_sizes "
                       f"({len(chrom_sizes)} chromosomes)")
    values = np.asarray(values, np.float32)
    if values.ndim != 1 or not np.isfinite(values).all():
      raise ValueError(f"window at {chrom}:{start}: expected finite values of shape (L,), got "
                       f"shape {values.shape}")
    lo, hi = max(start, 0), min(start + len(values), chrom_sizes[chrom])
    if lo < hi:
      per_chrom[chrom].append((lo, values[lo - start:hi - start]))
  return per_chrom


def _clusters(windows: list) -> list[list]:
  """Sorted windows [(start, values (L,))] grouped into runs that overlap or touch, so each
  cluster covers one contiguous span."""
  clusters: list[list] = []
  end = None
  for start, values in sorted(windows, key=lambda w: w[0]):
    if end is None or start > end:
      clusters.append([])
      end = start
    clusters[-1].append((start, values))
    end = max(end, start + len(values))
  return clusters


def run_length(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """values float32 (N,), N >= 1 -> (starts (R,), ends (R,)) of runs of equal values."""
  change = np.flatnonzero(values[1:] != values[:-1]) + 1
  return np.concatenate(([0], change)), np.concatenate((change, [len(values)]))


def _cluster_entries(cluster: list, block: int) -> Iterator[tuple[np.ndarray, ...]]:
  """Batches (starts (R,), ends (R,), values float32 (R,)) of the runs of equal values of the
  max over a cluster's windows, in order, max-combined `block` bases at a time."""
  starts = np.array([s for s, _ in cluster])
  ends = np.array([s + len(v) for s, v in cluster])
  pending = None  # the last run of a block: it may continue into the next block
  for b0 in range(int(starts.min()), int(ends.max()), block):
    b1 = min(b0 + block, int(ends.max()))
    combined = np.full(b1 - b0, -np.inf, np.float32)
    for i in np.flatnonzero((starts < b1) & (ends > b0)):
      s, values = cluster[i]
      lo, hi = max(s, b0), min(s + len(values), b1)
      np.maximum(combined[lo - b0:hi - b0], values[lo - s:hi - s],
                 out=combined[lo - b0:hi - b0])
    run_starts, run_ends = run_length(combined)
    runs = (run_starts + b0, run_ends + b0, combined[run_starts])
    if pending is not None:
      if pending[2][0] == runs[2][0]:
        runs[0][0] = pending[0][0]
      else:
        yield pending
    yield tuple(r[:-1] for r in runs)
    pending = tuple(r[-1:] for r in runs)
  if pending is not None:
    yield pending


def write_mask_bigwig(path: str | os.PathLike, chrom_sizes: dict[str, int], windows,
                      *, block: int = BLOCK_BASES) -> None:
  """Writes windows of per-base values as a bigWig; atomic.

  windows: iterable of (chrom, start, values float (L,)) in genome coordinates (start may be
  negative). Overlaps hold the maximum; bases outside [0, chrom size) are dropped and bases
  of no window get no entry. Header chromosomes in `chrom_sizes` order; values float32.
  """
  for chrom, size in chrom_sizes.items():
    if not isinstance(size, (int, np.integer)) or size <= 0:
      raise ValueError(f"chrom_sizes[{chrom!r}] = {size!r}: expected a positive integer")
  per_chrom = _clipped_windows(chrom_sizes, windows)
  with atomic_output(path) as tmp:
    bw = pyBigWig.open(str(tmp), "w")
    try:
      bw.addHeader([(c, int(n)) for c, n in chrom_sizes.items()])
      for chrom, chrom_windows in per_chrom.items():
        for cluster in _clusters(chrom_windows):
          for starts, ends, values in _cluster_entries(cluster, block):
            if len(starts):
              bw.addEntries([chrom] * len(starts), starts.tolist(), ends=ends.tolist(),
                            values=values.astype(np.float64).tolist())
    finally:
      bw.close()
