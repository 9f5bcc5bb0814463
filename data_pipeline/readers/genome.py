"""FASTA windows (docs/data.md): DNA as uint8 codes, N beyond the ends (chromosome lengths
come from `data_pipeline.io.read_chrom_lengths`)."""

from __future__ import annotations

import pathlib

import numpy as np
import pyfaidx

from data_pipeline.errors import DataFormatError, MissingInputError
from data_pipeline.io import check_same_lengths

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


def check_index(fasta: pathlib.Path) -> None:
  """A `.fai` beside `fasta` must describe this FASTA: each record's header line ends just
  before its offset, and its last base is followed by the next header or the end of the
  file. A stale index (the FASTA was
  replaced or truncated after indexing) is refused naming both files; none is re-indexed
  behind the user's back. A missing index is built by pyfaidx."""
  fai = fasta.with_name(fasta.name + ".fai")
  if not fai.is_file():
    return
  size = fasta.stat().st_size
  with fai.open() as index, fasta.open("rb") as f:
    for n, line in enumerate(index, start=1):
      fields = line.rstrip("\n").split("\t")
      try:
        name, length, offset, bases, width = fields[0], *map(int, fields[1:5])
      except ValueError:
        raise DataFormatError(f"{fai}: line {n} {line.strip()!r}: expected name, length, "
                              "offset, line bases, line width (tab-separated integers); "
                              f"delete it and it is rebuilt from {fasta.name}") from None
      step = max(bases, 1)
      last = offset + (length - 1) // step * width + (length - 1) % step  # its last base
      f.seek(max(0, offset - len(name) - 1024))
      before = f.read(max(0, offset - f.tell())) if 0 < offset <= size else b""
      header = before.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
      ok_header = before.endswith(b"\n") and header.startswith(b">" + name.encode()) and (
          header[len(name) + 1:len(name) + 2] in (b"", b" ", b"\t"))
      f.seek(last + 1)
      after = f.read(width + 2).lstrip(b"\r\n")  # what follows its last base
      ends_right = last < size and (after == b"" or after.startswith(b">"))
      if not ok_header or (length > 0 and not ends_right):
        why = ("no header line for it ends at its offset" if not ok_header else
               "its last base lies past the end of the FASTA" if last >= size else
               "its sequence goes on past the length the index gives")
        raise DataFormatError(f"{fai}: does not match {fasta} (record {name!r}: {why}); the "
                              "FASTA changed after it was indexed: delete the .fai and it "
                              "is rebuilt")


class Genome:
  """A FASTA opened once (pyfaidx, raw strings) that returns windows as base codes."""

  def __init__(self, path: str | pathlib.Path):
    self.path = pathlib.Path(path)
    if not self.path.is_file():
      raise MissingInputError(f"{self.path}: FASTA file not found")
    check_index(self.path)
    try:
      self._fasta = pyfaidx.Fasta(str(self.path), as_raw=True, sequence_always_upper=False,
                                  read_ahead=None)
    except (pyfaidx.FastaIndexingError, ValueError, OSError) as e:
      raise DataFormatError(f"{self.path}: cannot index FASTA ({e})") from e
    self.lengths = {name: len(rec) for name, rec in self._fasta.records.items()}

  def check_lengths(self, expected: dict[str, int], source: str | pathlib.Path) -> None:
    """Every chromosome both name has the same length here and in `source`."""
    check_same_lengths(expected, source, self.lengths, self.path)

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
