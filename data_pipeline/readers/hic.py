"""Hi-C contact with the TSS: `HiC/<cell>/hic_feat_chrN.h5`, one dataset per gene
(docs/data.md, "The published GeneExp layout").

Dataset `chrN_<tss>` is a per-bp vector of contact counts with the TSS over the gene's window
[tss - W/2, tss + W/2) clipped to the chromosome, which is how the published files store it
(the original code pads it back with the window's overhang at each chromosome end). So a
vector of length M is centred on the TSS (element i at `tss - M//2 + i`) unless that placement
would cross a chromosome end, in which case it is clipped there and starts at 0 (start of the
chromosome) or ends at the chromosome's length. The model reads log10(1 + x); NaN is 0, and
so is anything outside the vector or the chromosome.
"""

from __future__ import annotations

import pathlib

import h5py
import numpy as np

from data_pipeline.errors import DataFormatError, MissingInputError


def vector_start(tss: int, length: int, chrom_length: int) -> int:
  """Genomic position of element 0 of a stored contact vector of `length` (see module doc)."""
  first = tss - length // 2
  if first < 0:  # clipped at the chromosome start
    return 0
  if first + length > chrom_length:  # clipped at the chromosome end
    return chrom_length - length
  return first


class HicReader:
  """Opens each chromosome's HDF5 once, on first use."""

  def __init__(self, hic_dir: str | pathlib.Path):
    self.hic_dir = pathlib.Path(hic_dir)
    if not self.hic_dir.is_dir():
      raise MissingInputError(f"{self.hic_dir}: Hi-C directory not found")
    self._files: dict[str, h5py.File] = {}

  def path(self, chrom: str) -> pathlib.Path:
    return self.hic_dir / f"hic_feat_{chrom}.h5"

  def _file(self, chrom: str) -> h5py.File:
    if chrom not in self._files:
      path = self.path(chrom)
      if not path.is_file():
        raise MissingInputError(f"{path}: Hi-C file for {chrom} not found")
      try:
        self._files[chrom] = h5py.File(path, "r")
      except OSError as e:
        raise DataFormatError(f"{path}: cannot open as HDF5 ({e})") from e
    return self._files[chrom]

  def require(self, chrom: str, tss: int) -> None:
    """Raises if the HDF5 of `chrom` or its dataset `chrN_<tss>` is missing."""
    name = f"{chrom}_{tss}"
    if name not in self._file(chrom):
      raise DataFormatError(f"{self.path(chrom)}: no dataset {name!r} for the gene at "
                            f"{chrom}:{tss}")

  def window(self, chrom: str, tss: int, start: int, end: int,
             chrom_length: int) -> np.ndarray:
    """Returns log10(1 + contact): float32 (end-start,) over [start, end) for the gene at
    `tss`; 0 beyond the chromosome ends and beyond the stored vector."""
    self.require(chrom, tss)
    name = f"{chrom}_{tss}"
    dset = self._file(chrom)[name]
    if dset.ndim != 1:
      raise DataFormatError(f"{self.path(chrom)}: dataset {name!r} has shape {dset.shape}, "
                            "expected a 1-D per-bp vector")
    out = np.zeros(end - start, dtype=np.float32)
    first = vector_start(tss, dset.shape[0], chrom_length)  # genomic position of element 0
    lo = max(start, 0, first)
    hi = min(end, chrom_length, first + dset.shape[0])
    if lo < hi:
      raw = dset[lo - first:hi - first].astype(np.float32)
      np.nan_to_num(raw, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
      np.maximum(raw, 0.0, out=raw)  # a negative count has no log; treat it as no contact
      out[lo - start:hi - start] = np.log10(1.0 + raw)
    return out

  def close(self) -> None:
    for f in self._files.values():
      f.close()
    self._files.clear()
