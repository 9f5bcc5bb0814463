"""bigWig signal windows: NaN and missing coverage read as 0, zero padding (docs/data.md,
"The published GeneExp layout").

A bigWig without a chromosome that a gene needs is an error (not silent zeros): a missing
chromosome almost always means the wrong file or genome build, and zeros would train the model
on a blank track without anyone noticing.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pyBigWig

from data_pipeline.errors import DataFormatError, MissingInputError


class BigWigTrack:
  """One bigWig opened once; `window` returns float32 (L,) values."""

  def __init__(self, path: str | pathlib.Path):
    self.path = pathlib.Path(path)
    if not self.path.is_file():
      raise MissingInputError(f"{self.path}: bigWig file not found")
    try:
      self._bw = pyBigWig.open(str(self.path))
    except RuntimeError as e:
      raise DataFormatError(f"{self.path}: cannot open as bigWig ({e})") from e
    if self._bw is None or not self._bw.isBigWig():
      raise DataFormatError(f"{self.path}: not a bigWig file")
    self.lengths: dict[str, int] = dict(self._bw.chroms())

  def require(self, chrom: str) -> None:
    """Raises DataFormatError when the bigWig has no chromosome `chrom`."""
    if chrom not in self.lengths:
      raise DataFormatError(
          f"{self.path}: bigWig has no chromosome {chrom!r} (a gene needs it); it has "
          f"{sorted(self.lengths)[:10]}{'...' if len(self.lengths) > 10 else ''}")

  def window(self, chrom: str, start: int, end: int) -> np.ndarray:
    """Returns signal: float32 (end-start,) over [start, end); NaN -> 0, 0 beyond the ends."""
    self.require(chrom)
    out = np.zeros(end - start, dtype=np.float32)
    lo, hi = max(start, 0), min(end, self.lengths[chrom])
    if lo < hi:
      values = self._bw.values(chrom, lo, hi, numpy=True)
      out[lo - start:hi - start] = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    return out

  def intervals(self, chrom: str):
    """Yields (start, end, value) of every stored interval of `chrom` (for bedGraph export)."""
    self.require(chrom)
    return self._bw.intervals(chrom) or ()

  def close(self) -> None:
    self._bw.close()
