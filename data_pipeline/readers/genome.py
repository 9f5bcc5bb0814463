"""FASTA windows (docs/data.md): DNA as uint8 codes, N beyond the ends (chromosome lengths
come from `data_pipeline.io.read_chrom_lengths`)."""

from __future__ import annotations

import pathlib

import numpy as np
import pyfaidx

from data_pipeline.errors import DataFormatError

# Base codes of the `dna` feature.
A, C, G, T, N = 0, 1, 2, 3, 4

# Byte -> code; soft-masked (lowercase) bases count as their upper-case base, and any other
# byte (N, IUPAC ambiguity codes, ...) is N.
_CODE_OF_BYTE = np.full(256, N, dtype=np.uint8)
for _base, _code in zip(b"ACGT", (A, C, G, T)):
  _CODE_OF_BYTE[_base] = _code
  _CODE_OF_BYTE[ord(chr(_base).lower())] = _code


def encode_bases(seq: bytes | str) -> np.ndarray:
  """Returns uint8 (len(seq),) codes A=0 C=1 G=2 T=3 N=4 (case-insensitive)."""
  if isinstance(seq, str):
    seq = seq.encode("ascii", errors="replace")
  return _CODE_OF_BYTE[np.frombuffer(seq, dtype=np.uint8)]


class Genome:
  """A FASTA opened once (pyfaidx, raw strings) that returns windows as base codes."""

  def __init__(self, path: str | pathlib.Path):
    self.path = pathlib.Path(path)
    if not self.path.is_file():
      raise FileNotFoundError(f"{self.path}: FASTA file not found")
    try:
      self._fasta = pyfaidx.Fasta(str(self.path), as_raw=True, sequence_always_upper=False,
                                  read_ahead=None)
    except (pyfaidx.FastaIndexingError, ValueError, OSError) as e:
      raise DataFormatError(f"{self.path}: cannot index FASTA ({e})") from e
    self.lengths = {name: len(rec) for name, rec in self._fasta.records.items()}

  def require(self, chrom: str) -> None:
    """Raises DataFormatError when the FASTA has no sequence named `chrom`."""
    if chrom not in self.lengths:
      raise DataFormatError(
          f"{self.path}: no sequence named {chrom!r} (the gene table names it); "
          f"FASTA has {sorted(self.lengths)[:10]}{'...' if len(self.lengths) > 10 else ''}")

  def window(self, chrom: str, start: int, end: int) -> np.ndarray:
    """Returns dna: uint8 (end-start,) codes of [start, end), N beyond the chromosome ends."""
    self.require(chrom)
    out = np.full(end - start, N, dtype=np.uint8)
    lo, hi = max(start, 0), min(end, self.lengths[chrom])
    if lo < hi:
      out[lo - start:hi - start] = encode_bases(self._fasta[chrom][lo:hi])
    return out

  def close(self) -> None:
    self._fasta.close()
