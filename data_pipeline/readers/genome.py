"""Chromosome lengths and FASTA windows (docs/data.md): DNA as uint8 codes, N beyond the ends."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pyfaidx

from data_pipeline.readers.errors import DataFormatError

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


def read_chrom_lengths(path: str | pathlib.Path, genome: str = "hg38") -> dict[str, int]:
  """Reads `chr_length.json` ({"hg38": {"chr1": 248956422, ...}}) -> {chrom: length}."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path}: chromosome-length JSON not found")
  try:
    data = json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise DataFormatError(f"{path}: not valid JSON ({e})") from e
  if not isinstance(data, dict) or not isinstance(data.get(genome), dict):
    raise DataFormatError(f"{path}: expected an object with key {genome!r} holding "
                          "{chrom: length}")
  return check_chrom_lengths(path, genome, data[genome])


def check_chrom_lengths(path: str | pathlib.Path, field: str, lengths: dict
                        ) -> dict[str, int]:
  """`lengths` ({chrom: length}, object `field` of JSON file `path`) if every length is a
  positive integer, else DataFormatError naming the file, field and chromosome."""
  for chrom, length in lengths.items():
    if not isinstance(length, int) or isinstance(length, bool) or length <= 0:
      raise DataFormatError(f"{path}: {field}.{chrom} = {length!r}, expected a positive "
                            "integer length")
  return dict(lengths)


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
