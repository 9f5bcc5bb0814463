"""The per-gene tables (docs/data.md): fold CSV, expression CSV (mRNA features + the CAGE or
RNA-seq label) and the ABC gene table, joined into one `Gene` per example.

Every reader checks its header, the number of fields of each row, numbers and duplicates,
and names the file, the row (1-based, header = row 1) and the column in its error message.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import pathlib
from typing import Iterator, Sequence

import numpy as np

from data_pipeline.layout import RNA_FEATURE_COLUMNS, TARGETS, GeneExpLayout
from data_pipeline.errors import DataFormatError, MissingInputError

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
# Columns that may hold the gene's ENSID, by table, in order of preference.
_ID_COLUMNS = ("ENSID", "gene_id", "Gene stable ID")
_GENE_TABLE_ID_COLUMNS = ("name", "symbol")
PROMOTER_COLUMNS = ("H3K27ac.RPM.TSS1Kb", "DHS.RPM.TSS1Kb")


@dataclasses.dataclass(frozen=True, eq=False)
class Gene:
  """One example's gene.

  rna_feat: float32 (F,) = the 8 mRNA features (RNA_FEATURE_COLUMNS order) then promoter
    activity sqrt(H3K27ac.RPM.TSS1Kb * DHS.RPM.TSS1Kb).
  target: log10(1 + CAGE), or with target 'rna' the stored Actual_<cell> (see read_target).
  """

  ensid: str
  chrom: str  # 'chrN'
  tss: int  # 0-based position; the window is [tss - L/2, tss + L/2)
  strand: str  # '+' or '-'
  rna_feat: np.ndarray
  target: float


@dataclasses.dataclass(frozen=True)
class GeneTableRow:
  chrom: str
  tss: int
  strand: str
  promoter_activity: float


def chrom_name(chrom: str) -> str:
  """'X' or 'chrX' -> 'chrX' (the fold and mRNA tables drop the prefix)."""
  chrom = chrom.strip()
  return chrom if chrom.startswith("chr") else f"chr{chrom}"


def _rows(path: pathlib.Path, delimiter: str, required: Sequence[str],
          what: str, hint: str = "") -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
  """Opens a delimited table; returns its header and an iterator of (row number, row dict).

  Row numbers are 1-based file lines (header = 1). Rows with the wrong number of fields are
  errors; blank lines are skipped. `hint` ends the message of a missing column.
  """
  if not path.is_file():
    raise MissingInputError(f"{path}: {what} not found")
  f = path.open(newline="")
  reader = csv.reader(f, delimiter=delimiter)
  header = next(reader, None)
  if header is None:
    f.close()
    raise DataFormatError(f"{path}: empty file, expected a {what} with a header row")
  header = [h.strip() for h in header]
  missing = [c for c in required if c not in header]
  if missing:
    f.close()
    raise DataFormatError(f"{path}: header lacks column(s) {missing}{hint}; it has {header}")

  def rows():
    with f:
      for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
          continue
        if len(row) != len(header):
          raise DataFormatError(f"{path}: row {reader.line_num} has {len(row)} fields, "
                                f"expected {len(header)} like the header")
        yield reader.line_num, dict(zip(header, row))

  return header, rows()


def _id_column(path: pathlib.Path, header: list[str], candidates: Sequence[str]) -> str:
  for c in candidates:
    if c in header:
      return c
  if header and header[0] in ("", "Unnamed: 0"):  # a pandas index written without a name
    return header[0]
  raise DataFormatError(f"{path}: no gene-id column; expected one of {list(candidates)} "
                        f"(or an unnamed first column), header is {header}")


def _float(path: pathlib.Path, line: int, column: str, value: str) -> float:
  try:
    x = float(value)
  except ValueError:
    raise DataFormatError(f"{path}: row {line}, column {column!r}: {value!r} is not a "
                          "number") from None
  if not math.isfinite(x):
    raise DataFormatError(f"{path}: row {line}, column {column!r}: {value!r} is not a "
                          "finite number")
  return x


def _new_id(path: pathlib.Path, line: int, ensid: str, seen: dict) -> str:
  ensid = ensid.strip()
  if not ensid:
    raise DataFormatError(f"{path}: row {line}: empty gene id")
  if ensid in seen:
    raise DataFormatError(f"{path}: row {line}: duplicate gene id {ensid!r}")
  return ensid


def read_fold_csv(path: str | pathlib.Path, fold: int | str = 11) -> dict[str, tuple[str, str]]:
  """Reads the leave-chromosome-out split -> {ensid: (chrom 'chrN', split)} for `fold`.

  `fold` is 1..12 or 'enformer' (column `fold_<fold>`); every value must be train/valid/test.
  """
  path = pathlib.Path(path)
  column = f"fold_{fold}"
  header, rows = _rows(path, ",", ("chrom", column), "fold CSV")
  id_col = _id_column(path, header, _ID_COLUMNS)
  out: dict[str, tuple[str, str]] = {}
  for line, row in rows:
    ensid = _new_id(path, line, row[id_col], out)
    split = row[column].strip()
    if split not in SPLITS:
      raise DataFormatError(f"{path}: row {line}, column {column!r}: {split!r}, expected one "
                            f"of {list(SPLITS)}")
    if not row["chrom"].strip():
      raise DataFormatError(f"{path}: row {line}, column 'chrom': empty")
    out[ensid] = (chrom_name(row["chrom"]), split)
  return out


def read_rna_features(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """Reads the 8 mRNA half-life features -> {ensid: float32 (8,)}.

  Works on the expression CSV and on the mRNA-feature table (id column ENSID, gene_id,
  'Gene stable ID' or an unnamed index).
  """
  path = pathlib.Path(path)
  header, rows = _rows(path, ",", RNA_FEATURE_COLUMNS, "mRNA-feature CSV")
  id_col = _id_column(path, header, _ID_COLUMNS)
  out: dict[str, np.ndarray] = {}
  for line, row in rows:
    ensid = _new_id(path, line, row[id_col], out)
    out[ensid] = np.array([_float(path, line, c, row[c]) for c in RNA_FEATURE_COLUMNS],
                          dtype=np.float32)
  return out


def read_target(path: str | pathlib.Path, column: str, target: str = "cage"
                ) -> dict[str, float]:
  """Reads one label column of the expression CSV -> {ensid: the model's target}.

  target 'cage': a non-negative count (`<cell>_CAGE_128*3_sum`), returned as log10(1 + x);
  'rna': `Actual_<cell>`, Xpresso's RNA-seq value, already log-scale (it may be negative),
  returned as stored, as the original's expr_type='RNA' and EPInformer read it.
  """
  if target not in TARGETS:
    raise DataFormatError(f"unknown target {target!r}: expected one of {list(TARGETS)}")
  path = pathlib.Path(path)
  header, rows = _rows(path, ",", (column,), "expression CSV",
                       hint=f" (the {target.upper()} label --target {target} reads)")
  id_col = _id_column(path, header, _ID_COLUMNS)
  out: dict[str, float] = {}
  for line, row in rows:
    ensid = _new_id(path, line, row[id_col], out)
    x = _float(path, line, column, row[column])
    if target == "rna":
      out[ensid] = x
      continue
    if x < 0:
      raise DataFormatError(f"{path}: row {line}, column {column!r}: {x} < 0, expected a "
                            "non-negative CAGE count")
    out[ensid] = float(np.log10(1.0 + x))
  return out


def read_gene_table(path: str | pathlib.Path) -> dict[str, GeneTableRow]:
  """Reads the ABC GeneList.txt (tab-separated) -> {ensid: GeneTableRow}."""
  path = pathlib.Path(path)
  header, rows = _rows(path, "\t", ("chr", "tss", "strand") + PROMOTER_COLUMNS,
                       "ABC gene table")
  id_col = _id_column(path, header, _GENE_TABLE_ID_COLUMNS)
  out: dict[str, GeneTableRow] = {}
  for line, row in rows:
    ensid = _new_id(path, line, row[id_col], out)
    try:
      tss = int(row["tss"])
    except ValueError:
      raise DataFormatError(f"{path}: row {line}, column 'tss': {row['tss']!r} is not an "
                            "integer") from None
    if tss < 0:
      raise DataFormatError(f"{path}: row {line}, column 'tss': {tss} < 0")
    strand = row["strand"].strip()
    if strand not in ("+", "-"):
      raise DataFormatError(f"{path}: row {line}, column 'strand': {strand!r}, expected "
                            "'+' or '-'")
    rpm = [_float(path, line, c, row[c]) for c in PROMOTER_COLUMNS]
    if min(rpm) < 0:
      raise DataFormatError(f"{path}: row {line}: negative RPM in {PROMOTER_COLUMNS}")
    out[ensid] = GeneTableRow(chrom_name(row["chr"]), tss, strand, math.sqrt(rpm[0] * rpm[1]))
  return out


@dataclasses.dataclass(frozen=True)
class GeneSplits:
  """The genes of each split, plus how many fold-CSV genes were skipped and why."""

  splits: dict[str, list[Gene]]
  skipped: dict[str, int]


def load_genes(layout: GeneExpLayout, fold: int | str = 11, target: str = "cage"
               ) -> GeneSplits:
  """Joins fold CSV, expression CSV and gene table into the genes of train/valid/test, with
  `target` ('cage' or 'rna', see read_target) as each gene's label.

  A fold-CSV gene absent from the gene table or the expression CSV, or whose chromosome
  disagrees between them, is skipped; the counts are logged and returned.
  """
  folds = read_fold_csv(layout.fold_csv, fold)
  features = read_rna_features(layout.expression_csv)
  labels = read_target(layout.expression_csv, layout.target_column(target), target)
  table = read_gene_table(layout.gene_table)
  splits: dict[str, list[Gene]] = {s: [] for s in SPLITS}
  skipped = {"not_in_gene_table": 0, "not_in_expression_csv": 0, "chrom_mismatch": 0}
  for ensid, (chrom, split) in folds.items():
    if ensid not in table:
      skipped["not_in_gene_table"] += 1
      continue
    if ensid not in features:
      skipped["not_in_expression_csv"] += 1
      continue
    row = table[ensid]
    if row.chrom != chrom:
      skipped["chrom_mismatch"] += 1
      continue
    rna_feat = np.append(features[ensid], np.float32(row.promoter_activity))
    splits[split].append(Gene(ensid, row.chrom, row.tss, row.strand,
                              rna_feat.astype(np.float32), labels[ensid]))
  for reason, count in skipped.items():
    if count:
      log.warning("skipped %d gene(s) of %s: %s", count, layout.fold_csv,
                  reason.replace("_", " "))
  return GeneSplits(splits, skipped)
