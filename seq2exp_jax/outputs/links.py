"""Enhancer-gene links: one row per candidate element in a gene's window, in the column
convention of the ABC model's EnhancerPredictionsFull / ENCODE-rE2G tables (tab-separated,
header line, 0-based half-open coordinates, sorted by chr then start):

  chr start end name class     the element (clipped to the gene's window and chromosome)
  TargetGene TargetGeneEnsembl_ID TargetGeneTSS CellType
  distance                     |element midpoint - TSS|, bp (ABC's `distance`)
  mask_mean mask_max           the learned mask over the element (NA without a mask)
  H3K27ac_mean DNase_mean      the window's signal tracks, mean per base over the element
  hic_contact                  mean Hi-C contact with the TSS (10^track - 1) over it
  MACS3_overlap                fraction of its bases in the data set's MACS3 DNase peaks
  activity_base                sqrt(sum H3K27ac x sum DNase) over the element (ABC counts
                               reads in the element, so activity grows with it, as there)
  ABC.Score.Numerator          activity_base x hic_contact
  ABC.Score                    the numerator / its sum over the gene's candidate elements
  prediction                   the model's prediction for the gene's whole window
  deletion_effect              prediction with the element deleted - prediction
  keep_alone_effect            prediction with the element and the promoter alone -
                               prediction with the promoter alone (seq2exp_jax/outputs/
                               perturb.py; both in the prediction's log10 units)
  Score                        our score, `SCORES[score]`: by default the mask mean (what
                               Seq2Exp learned to keep); `deletion`: -deletion_effect

Candidates come from BED files or ABC EnhancerList-style tables (`read_candidates`), or,
when none are given, from the runs of the learned mask (as `seq2exp predict`'s BED).
`class`: the table's `class` column, else a synthetic truth kind named after the last ':' of
a BED name (`ENSG...:causal`, `:dead`, ...), else, on a synthetic data set, the planted truth
under most of the element (causal, decoy, other), else `candidate` (or `mask_run`).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Iterable, Sequence

import numpy as np
from jaxtyping import Bool, Float, UInt8

from data_pipeline import io
from data_pipeline.errors import DataFormatError
from data_pipeline.synth.landscape import CLASS_FRACTIONS
from seq2exp_jax.outputs.genome_tracks import window_start

LINK_COLUMNS: tuple[str, ...] = (
    "chr", "start", "end", "name", "class", "TargetGene", "TargetGeneEnsembl_ID",
    "TargetGeneTSS", "CellType", "distance", "mask_mean", "mask_max", "H3K27ac_mean",
    "DNase_mean", "hic_contact", "MACS3_overlap", "activity_base", "ABC.Score.Numerator",
    "ABC.Score", "prediction", "deletion_effect", "keep_alone_effect", "Score")
# --score: which column `Score` copies (and its sign).
SCORES = {"mask_mean": ("mask_mean", 1.0), "mask_max": ("mask_max", 1.0),
          "deletion": ("deletion_effect", -1.0)}
TRUTH_KINDS = frozenset(CLASS_FRACTIONS)  # causal, insulated, dead, split
TRUTH_CODES = {1: "causal", 2: "decoy", 0: "other"}  # data_pipeline/truth.py's codes
H3K27AC, DNASE, HIC = 0, 1, 2  # signal tracks (data_pipeline/batch.py SIGNAL_TRACKS)


@dataclasses.dataclass(frozen=True)
class Candidate:
  """A candidate element [start, end) on `chrom`; `klass` None when its file gives none."""

  chrom: str
  start: int
  end: int
  name: str
  klass: str | None = None


def _class_of_name(name: str) -> str | None:
  kind = name.rsplit(":", 1)[-1] if ":" in name else ""
  return kind if kind in TRUTH_KINDS else None


def _parse_line(fields: list[str], columns: dict[str, int] | None
                ) -> tuple[str, int, int, str, str | None]:
  if len(fields) < 3:
    raise ValueError(f"expected >= 3 tab-separated fields (chrom, start, end), got "
                     f"{len(fields)}")
  try:
    start, end = int(fields[1]), int(fields[2])
  except ValueError:
    raise ValueError(f"start {fields[1]!r}, end {fields[2]!r}: expected integers") from None
  if not 0 <= start < end:
    raise ValueError(f"expected 0 <= start < end, got {start}, {end}")
  if columns is None:  # BED: name in column 4
    name = fields[3] if len(fields) > 3 else f"{fields[0]}:{start}-{end}"
    return fields[0], start, end, name, _class_of_name(name)
  name, klass = (fields[columns[key]] if columns.get(key, len(fields)) < len(fields) else ""
                 for key in ("name", "class"))
  name = name or f"{fields[0]}:{start}-{end}"
  return fields[0], start, end, name, klass or _class_of_name(name)


def read_candidates(paths: Sequence[str | os.PathLike], chrom_lengths: dict[str, int]
                    ) -> dict[str, list[Candidate]]:
  """{chrom: candidates sorted by start} from BED3+ files (track/browser/# lines skipped)
  or tables whose header starts `chr start end` (ABC's EnhancerList.txt, a links table:
  their `name` and `class` columns are read). A line that is not an interval on a
  chromosome of `chrom_lengths` (within its length) is refused naming the file and line."""
  out: dict[str, list[Candidate]] = {}
  for path in map(pathlib.Path, paths):
    if not path.is_file():
      raise DataFormatError(f"--elements {path}: no such file")
    columns = None
    for n, line in enumerate(path.read_text().splitlines(), start=1):
      if not line.strip() or line.startswith(("#", "track", "browser")):
        continue
      fields = line.rstrip("\r").split("\t")
      if n == 1 and fields[:3] == ["chr", "start", "end"]:
        columns = {c: i for i, c in enumerate(fields)}
        continue
      try:
        chrom, start, end, name, klass = _parse_line(fields, columns)
        if chrom not in chrom_lengths:
          raise ValueError(f"unknown chromosome {chrom!r} (the data set has "
                           f"{', '.join(list(chrom_lengths)[:4])}, ...)")
        if end > chrom_lengths[chrom]:
          raise ValueError(f"end {end} is past {chrom}'s length {chrom_lengths[chrom]}")
      except ValueError as e:
        raise DataFormatError(f"--elements {path} line {n}: {e}: {line[:80]!r}") from None
      out.setdefault(chrom, []).append(Candidate(chrom, start, end, name, klass))
  return {c: sorted(v, key=lambda e: (e.start, e.end, e.name)) for c, v in out.items()}


def in_window(candidates: dict[str, list[Candidate]], chrom: str, lo: int, hi: int
              ) -> list[Candidate]:
  """The candidates overlapping [lo, hi) on `chrom`, clipped to it."""
  found = []
  for c in candidates.get(chrom, ()):
    if c.start >= hi:
      break
    if c.end > lo:
      found.append(dataclasses.replace(c, start=max(c.start, lo), end=min(c.end, hi)))
  return found


@dataclasses.dataclass(frozen=True)
class GeneWindow:
  """A gene's identity and the genome span its window covers."""

  ensid: str
  symbol: str
  chrom: str
  tss: int
  length: int  # L
  cell_type: str = "NA"

  @property
  def start(self) -> int:
    return window_start(self.tss, self.length)

  def span(self, chrom_length: int) -> tuple[int, int]:
    """The window's part of the chromosome, [lo, hi)."""
    return max(self.start, 0), min(self.start + self.length, chrom_length)


def _klass(candidate: Candidate, truth: np.ndarray | None, default: str) -> str:
  if candidate.klass:
    return candidate.klass
  if truth is not None and truth.size:
    return TRUTH_CODES.get(int(np.bincount(truth, minlength=3).argmax()), "other")
  return default


def _number(x: float | None) -> str:
  return "NA" if x is None or not np.isfinite(x) else f"{x:.6g}"


def gene_rows(gene: GeneWindow, elements: Sequence[Candidate], *,
              signals: Float[np.ndarray, "L S"], mask: Float[np.ndarray, "L"] | None = None,
              peaks: Bool[np.ndarray, "L"] | None = None,
              truth: UInt8[np.ndarray, "L"] | None = None, prediction: float | None = None,
              deletion: Sequence[float] | None = None,
              keep_alone: Sequence[float] | None = None, score: str = "mask_mean",
              default_class: str = "candidate") -> list[dict[str, str]]:
  """One links row (LINK_COLUMNS -> text) per element of one gene, its ABC score
  normalised over `elements`. Elements are in genome coordinates inside the window;
  signals, mask, peaks, truth are the gene's window arrays; deletion, keep_alone the
  elements' effects (perturb.Effects)."""
  if score not in SCORES:
    raise ValueError(f"score {score!r}: expected one of {sorted(SCORES)}")
  signals = np.asarray(signals, np.float64)
  contact = np.expm1(signals[:, HIC] * np.log(10.0))  # the track is log10(1 + contact)
  values = []
  for k, e in enumerate(elements):
    s, t = e.start - gene.start, e.end - gene.start
    if not 0 <= s < t <= gene.length:
      raise ValueError(f"element {e}: outside the window of {gene.ensid}")
    part = signals[s:t]
    activity = float(np.sqrt(max(part[:, H3K27AC].sum(), 0.0) * max(part[:, DNASE].sum(), 0)))
    v = {"element": e, "mask_mean": None, "mask_max": None,
         "H3K27ac_mean": float(part[:, H3K27AC].mean()), "DNase_mean": float(part[:, DNASE].mean()),
         "hic_contact": float(contact[s:t].mean()),
         "MACS3_overlap": None if peaks is None else float(np.mean(peaks[s:t])),
         "activity_base": activity, "ABC.Score.Numerator": activity * float(contact[s:t].mean()),
         "deletion_effect": None if deletion is None else float(deletion[k]),
         "keep_alone_effect": None if keep_alone is None else float(keep_alone[k]),
         "class": _klass(e, None if truth is None else np.asarray(truth[s:t], np.int64),
                         default_class)}
    if mask is not None:
      v["mask_mean"], v["mask_max"] = float(np.mean(mask[s:t])), float(np.max(mask[s:t]))
    column, sign = SCORES[score]
    v["Score"] = None if v[column] is None else sign * v[column]
    values.append(v)
  total = sum(v["ABC.Score.Numerator"] for v in values)
  rows = []
  for v in values:
    e = v["element"]
    row = {"chr": e.chrom, "start": str(e.start), "end": str(e.end), "name": e.name,
           "class": v["class"], "TargetGene": gene.symbol, "TargetGeneEnsembl_ID": gene.ensid,
           "TargetGeneTSS": str(gene.tss), "CellType": gene.cell_type,
           "distance": str(abs((e.start + e.end) // 2 - gene.tss)),
           "prediction": _number(prediction),
           "ABC.Score": _number(v["ABC.Score.Numerator"] / total if total > 0 else 0.0)}
    row.update({k: _number(v[k]) for k in LINK_COLUMNS if k not in row})
    rows.append(row)
  return rows


def sort_key(row: dict[str, str]) -> tuple:
  return row["chr"], int(row["start"]), int(row["end"]), row["TargetGene"], row["name"]


def links_text(rows: Iterable[dict[str, str]]) -> str:
  """The table: a header of LINK_COLUMNS and the rows sorted by chr, start, end, gene."""
  lines = ["\t".join(LINK_COLUMNS)]
  for row in sorted(rows, key=sort_key):
    for column in ("name", "class", "TargetGene", "CellType"):
      if not row[column] or any(ch in row[column] for ch in "\t\n"):
        raise ValueError(f"links row {row['chr']}:{row['start']}: {column} {row[column]!r} "
                         "must be non-empty without tabs or newlines")
    lines.append("\t".join(row[c] for c in LINK_COLUMNS))
  return "\n".join(lines) + "\n"


def write_links(path: str | os.PathLike, rows: Iterable[dict[str, str]], *,
                tabix: bool = True) -> list[pathlib.Path]:
  """Writes the table to `path` and, with pysam and `tabix`, a bgzipped copy `path`.gz with
  its tabix index `path`.gz.tbi (header skipped, chr/start/end columns, 0-based). The
  files replace their old versions together, only once all are complete. Returns them."""
  path = pathlib.Path(path)
  text = links_text(rows)
  try:
    import pysam  # noqa: PLC0415  (optional: without it the plain table is written)
  except ImportError:
    pysam = None
  written = [path]
  with io.file_set(path.parent) as tmp:
    (tmp / path.name).write_text(text)
    if tabix and pysam is not None:
      gz = tmp / f"{path.name}.gz"
      pysam.tabix_compress(str(tmp / path.name), str(gz), force=True)
      pysam.tabix_index(str(gz), seq_col=0, start_col=1, end_col=2, line_skip=1,
                        zerobased=True, force=True)
      written += [path.parent / gz.name, path.parent / f"{gz.name}.tbi"]
  return written
