"""Writers for the GeneExp layout files (docs/data.md).

`build` writes everything inside `io.atomic_output_dir`, a temporary sibling directory that
is swapped onto the target only when the whole data set is complete, so a failure never
leaves a half-written data set. Outputs are byte-reproducible: no timestamps (gzip mtime 0,
HDF5 without object times).
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import h5py
import numpy as np
import pyBigWig

from data_pipeline import io

FASTA_LINE = 60


class FastaWriter:
  """Streams chromosomes into a FASTA file (FASTA_LINE bases a line) and writes its .fai."""

  def __init__(self, path: pathlib.Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    self.path = path
    self._fh = open(path, "wb")
    self._fai: list[str] = []

  def add(self, name: str, ascii_bases: np.ndarray) -> None:
    """ascii_bases: uint8 (L,) ASCII letters of one chromosome."""
    self._fh.write(f">{name}\n".encode())
    offset = self._fh.tell()
    n = len(ascii_bases)
    full = n // FASTA_LINE
    body = np.empty((full, FASTA_LINE + 1), np.uint8)
    body[:, :FASTA_LINE] = ascii_bases[:full * FASTA_LINE].reshape(full, FASTA_LINE)
    body[:, FASTA_LINE] = ord("\n")
    self._fh.write(body.tobytes())
    if n % FASTA_LINE:
      self._fh.write(ascii_bases[full * FASTA_LINE:].tobytes() + b"\n")
    self._fai.append(f"{name}\t{n}\t{offset}\t{FASTA_LINE}\t{FASTA_LINE + 1}\n")

  def close(self) -> None:
    if not self._fh.closed:
      self._fh.close()
      pathlib.Path(str(self.path) + ".fai").write_text("".join(self._fai))

  def __enter__(self) -> "FastaWriter":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


class BigWigWriter:
  """Streams per-chromosome coverage (in header order) into a bigWig file."""

  def __init__(self, path: pathlib.Path, chrom_lengths: dict[str, int], bin_size: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    self._bw = pyBigWig.open(str(path), "w")
    self._bw.addHeader(list(chrom_lengths.items()), maxZooms=4)
    self._lengths = chrom_lengths
    self._bin = bin_size

  def add(self, chrom: str, values: np.ndarray) -> None:
    """values: float32 (ceil(chrom length / bin),) the value of each bin."""
    length, b = self._lengths[chrom], self._bin
    full = length // b
    if full:
      self._bw.addEntries(chrom, 0, values=values[:full].astype(np.float64), span=b, step=b)
    if length % b:
      self._bw.addEntries([chrom], [full * b], ends=[length], values=[float(values[full])])

  def close(self) -> None:
    if self._bw is not None:
      self._bw.close()
      self._bw = None

  def __enter__(self) -> "BigWigWriter":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def write_hic(path: pathlib.Path, vectors: dict[str, np.ndarray]) -> None:
  """One HDF5 per chromosome: dataset `chrN_<tss>` = float32 (L,) contact with that TSS."""
  path.parent.mkdir(parents=True, exist_ok=True)
  with h5py.File(path, "w", track_order=False) as f:
    for name in sorted(vectors):
      f.create_dataset(name, data=vectors[name], compression="gzip", compression_opts=4,
                       shuffle=True, track_times=False)


def write_table(path: pathlib.Path, header: Sequence[str], rows: Sequence[Sequence],
                sep: str) -> None:
  """Writes a delimited table; floats as the shortest text that reads back exactly."""
  def cell(v) -> str:
    text = repr(float(v)) if isinstance(v, (float, np.floating)) else str(v)
    if sep == "," and ("," in text or '"' in text):
      text = '"' + text.replace('"', '""') + '"'
    return text
  lines = [sep.join(header)] + [sep.join(cell(v) for v in r) for r in rows]
  io.write_text(path, "\n".join(lines) + "\n")


def write_bed_rows(path: pathlib.Path, rows: Sequence[Sequence]) -> None:
  """Headerless tab-separated BED rows (chrom, start, end, ...)."""
  io.write_text(path, "".join("\t".join(map(str, r)) + "\n" for r in rows))
