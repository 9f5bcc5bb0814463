"""Motif matrix files: JASPAR and the MEME suite's text format, read into count matrices.

JASPAR (`.jaspar`, the format of the shipped resources/motifs.jaspar): a header
`>ID NAME` then four rows, one per base, each `A [ n n ... ]`; the letter and the brackets
are optional (JASPAR's `.pfm` rows are bare numbers, in the order A C G T).

MEME (`.meme`, MEME's minimal motif format and the full text output of MEME/STREME):
`MOTIF ID [NAME]`, then `letter-probability matrix: alength= 4 w= W nsites= N ...` and W
rows of four probabilities (A C G T). Counts are the probabilities x nsites (20 when not
given, MEME's default). `ALPHABET=` must be DNA (ACGT); the file's background line is not
read (the scanner takes its background from the sequences it scans); other sections
(log-odds matrices, URLs) are skipped.

Every problem is a DataFormatError naming the file and the line.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import pathlib
import re

import numpy as np
from jaxtyping import Float

from data_pipeline.errors import DataFormatError, MissingInputError

BASES = "ACGT"
SHIPPED = "resources/motifs.jaspar"  # inside the data_pipeline package
MEME_DEFAULT_NSITES = 20.0
_ROW = re.compile(r"^\s*([ACGTacgt])?\s*\[?\s*([^\[\]]*?)\s*\]?\s*$")


@dataclasses.dataclass(frozen=True)
class MotifMatrix:
  """One motif: `counts` float (W, 4), columns A C G T, every position's sum > 0."""

  motif_id: str
  name: str
  counts: np.ndarray

  @property
  def width(self) -> int:
    return self.counts.shape[0]

  def frequencies(self) -> Float[np.ndarray, "W 4"]:
    """Base probabilities per position: counts / their sum."""
    return self.counts / self.counts.sum(1, keepdims=True)


def _numbers(text: str, source: str, n: int) -> list[float]:
  try:
    values = [float(v) for v in text.split()]
  except ValueError:
    raise DataFormatError(f"{source}: line {n}: {text.strip()!r}: expected numbers") from None
  if not values or not all(np.isfinite(values)) or min(values) < 0:
    raise DataFormatError(f"{source}: line {n}: {text.strip()!r}: expected non-negative "
                          "finite numbers")
  return values


def _matrix(motif_id: str, name: str, counts: np.ndarray, source: str, n: int) -> MotifMatrix:
  """Checks a (W, 4) count matrix whose header is line `n`."""
  empty = np.flatnonzero(counts.sum(1) <= 0)
  if len(empty):
    raise DataFormatError(f"{source}: line {n}: motif {motif_id}: position {empty[0] + 1} "
                          "has no counts (every position needs a positive total)")
  return MotifMatrix(motif_id, name, counts)


def _header(text: str, source: str, n: int) -> tuple[str, str]:
  fields = text.split()
  if not fields:
    raise DataFormatError(f"{source}: line {n}: {text!r}: expected a motif ID after the "
                          "marker (e.g. '>MA0035.4 GATA1' or 'MOTIF MA0035.4 GATA1')")
  return fields[0], " ".join(fields[1:]) or fields[0]


def parse_jaspar(text: str, source: str) -> list[MotifMatrix]:
  """JASPAR text -> motifs in file order (see the module docstring for the format)."""
  lines = [(n, ln) for n, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
  motifs = []
  for i in range(0, len(lines), 5):
    n, header = lines[i]
    if not header.startswith(">"):
      raise DataFormatError(f"{source}: line {n}: {header.strip()!r}: expected a header "
                            "'>ID NAME' followed by four rows A, C, G, T")
    motif_id, name = _header(header[1:], source, n)
    rows: dict[str, list[float]] = {}
    for j, (m, line) in enumerate(lines[i + 1:i + 5]):
      match = _ROW.match(line)
      if match is None or line.lstrip().startswith(">"):
        raise DataFormatError(f"{source}: line {m}: {line.strip()!r}: expected a row of "
                              f"counts for base {BASES[j]} of motif {motif_id}")
      letter = (match.group(1) or BASES[j]).upper()
      if letter in rows:
        raise DataFormatError(f"{source}: line {m}: motif {motif_id}: a second row {letter}")
      rows[letter] = _numbers(match.group(2), source, m)
    if len(rows) < 4:
      raise DataFormatError(f"{source}: line {n}: motif {motif_id}: expected four rows A, C, "
                            f"G, T after the header, the file ends after {len(rows)}")
    widths = {len(v) for v in rows.values()}
    if len(widths) != 1:
      raise DataFormatError(f"{source}: line {n}: motif {motif_id}: rows of different "
                            f"lengths {[len(rows[b]) for b in BASES]}; expected one width")
    counts = np.array([rows[b] for b in BASES], np.float64).T
    motifs.append(_matrix(motif_id, name, counts, source, n))
  return motifs


def _meme_fields(line: str) -> dict[str, str]:
  """'alength= 4 w= 11 nsites= 20 E= 0' -> {'alength': '4', 'w': '11', ...}."""
  return dict(re.findall(r"(\w+)\s*=\s*(\S+)", line))


def parse_meme(text: str, source: str) -> list[MotifMatrix]:
  """MEME text -> motifs in file order (see the module docstring for the format)."""
  motifs, current, reading = [], None, None  # current: (id, name, line); reading: rows
  width = nsites = 0.0

  def finish_matrix(n: int) -> None:
    nonlocal reading
    if width and len(reading) != width:
      raise DataFormatError(f"{source}: line {n}: motif {current[0]}: the matrix has "
                            f"{len(reading)} rows, its header says w= {int(width)}")
    if not reading:
      raise DataFormatError(f"{source}: line {n}: motif {current[0]}: empty matrix")
    motifs.append(_matrix(current[0], current[1], np.array(reading) * nsites, source,
                          current[2]))
    reading = None

  lines = text.splitlines()
  for n, line in enumerate(lines + [""], start=1):
    stripped = line.strip()
    if reading is not None:
      if stripped and stripped[0] in "0123456789.":
        values = _numbers(stripped, source, n)
        if len(values) != 4:
          raise DataFormatError(f"{source}: line {n}: {stripped!r}: expected 4 "
                                f"probabilities (A C G T), got {len(values)}")
        reading.append(values)
        if len(reading) == width:
          finish_matrix(n)
        continue
      finish_matrix(n)
    if stripped.startswith("ALPHABET"):
      letters = stripped.split("=", 1)[-1].strip()
      if letters.upper() != BASES:
        raise DataFormatError(f"{source}: line {n}: ALPHABET= {letters}: only DNA "
                              f"({BASES}) motifs can be scanned")
    elif stripped.startswith("MOTIF"):
      if current is not None and (not motifs or motifs[-1].motif_id != current[0]):
        raise DataFormatError(f"{source}: line {current[2]}: motif {current[0]} has no "
                              "'letter-probability matrix:'")
      current = (*_header(stripped[len("MOTIF"):], source, n), n)
    elif stripped.startswith("letter-probability matrix"):
      if current is None:
        raise DataFormatError(f"{source}: line {n}: a matrix before any 'MOTIF ID' line")
      fields = _meme_fields(stripped)
      try:
        width = float(fields.get("w", 0))
        nsites = float(fields.get("nsites", MEME_DEFAULT_NSITES))
        alength = int(fields.get("alength", 4))
      except ValueError:
        raise DataFormatError(f"{source}: line {n}: {stripped!r}: expected numbers after "
                              "alength=, w= and nsites=") from None
      if alength != 4 or nsites <= 0:
        raise DataFormatError(f"{source}: line {n}: {stripped!r}: expected alength= 4 "
                              "(DNA) and nsites= > 0")
      reading = []
  if current is not None and (not motifs or motifs[-1].motif_id != current[0]):
    raise DataFormatError(f"{source}: line {current[2]}: motif {current[0]} has no "
                          "'letter-probability matrix:'")
  return motifs


def parse_motifs(text: str, source: str) -> list[MotifMatrix]:
  """JASPAR or MEME text (told apart by the first line that says something) -> motifs;
  at least one, with distinct IDs."""
  first = next(((n, ln.strip()) for n, ln in enumerate(text.splitlines(), start=1)
                if ln.strip() and not ln.startswith("#")), (0, ""))
  if first[1].startswith(">"):
    motifs = parse_jaspar(text, source)
  elif first[1].startswith(("MEME", "MOTIF", "ALPHABET")):
    motifs = parse_meme(text, source)
  else:
    raise DataFormatError(f"{source}: line {first[0]}: {first[1][:60]!r}: expected a JASPAR "
                          "file (a '>ID NAME' header) or a MEME file ('MEME version 4')")
  if not motifs:
    raise DataFormatError(f"{source}: no motifs found (expected JASPAR or MEME matrices)")
  seen: set[str] = set()
  for m in motifs:
    if m.motif_id in seen:
      raise DataFormatError(f"{source}: motif ID {m.motif_id} appears twice; IDs must be "
                            "unique")
    seen.add(m.motif_id)
  return motifs


def read_motif_file(path: str | pathlib.Path | None = None) -> list[MotifMatrix]:
  """The motifs of a JASPAR or MEME file; None reads the shipped JASPAR subset."""
  if path is None:
    resource = importlib.resources.files("data_pipeline").joinpath(SHIPPED)
    return parse_motifs(resource.read_text(), SHIPPED)
  path = pathlib.Path(path)
  if not path.is_file():
    raise MissingInputError(f"{path}: motif file not found (expected JASPAR or MEME text)")
  try:
    text = path.read_text()
  except UnicodeDecodeError:
    raise DataFormatError(f"{path}: not a text file (expected JASPAR or MEME text)") from None
  return parse_motifs(text, str(path))
