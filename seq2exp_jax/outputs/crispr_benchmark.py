"""CRISPRi enhancer-gene benchmarks: reading the two published layouts, and writing one
from a synthetic genome's known answers.

* ENCODE `EPCrisprBenchmark` (EngreitzLab/CRISPR_comparison, resources/): tab-separated,
  `EP_COLUMNS` as in its example file EPCrisprBenchmark_Fulco2019_K562_GRCh38.tsv.gz (the
  combined files add measuredGeneEnsemblId and annotation columns after them). A pair is
  positive when `Regulated` is TRUE (significant and EffectSize < 0); only pairs with
  `ValidConnection` TRUE are kept, as the CRISPR_comparison pipeline does.
* Fulco et al. 2019, Supplementary Table 6a, saved as tab-separated text (`FULCO_COLUMNS`;
  the spreadsheet's title row above the header is skipped; coordinates hg19 as
  published). Positive: `Significant` TRUE and `Fraction change in gene expr` < 0.

`read_benchmark` picks the layout from the header, and refuses a missing column, a bad
value or an unknown chromosome in one line naming the file, the line and the column.
`synthetic_rows` fills EP_COLUMNS from `seq2exp synth`'s truth/elements.tsv: every planted
element with its own gene, Regulated = causal, EffectSize the noise-free formula's fraction
change of 1 + CAGE when the element is deleted (0 for decoys).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import os
import pathlib
from collections.abc import Iterator, Sequence

from data_pipeline import io
from data_pipeline.errors import DataFormatError, MissingInputError
from data_pipeline.layout import GeneExpLayout

EP_COLUMNS: tuple[str, ...] = (
    "chrom", "chromStart", "chromEnd", "name", "EffectSize", "chrTSS", "startTSS", "endTSS",
    "measuredGeneSymbol", "Significant", "pValueAdjusted", "PowerAtEffectSize25",
    "ValidConnection", "CellType", "Reference", "Regulated")
EP_REQUIRED = ("chrom", "chromStart", "chromEnd", "measuredGeneSymbol", "Regulated",
               "ValidConnection")
FULCO_COLUMNS: tuple[str, ...] = (
    "chr", "start", "end", "Element name", "Gene", "class", "Cell type",
    "Fraction change in gene expr", "Adjusted p-value", "Significant", "RNA readout method",
    "Perturbation method", "nKO", "nCtrl", "semKO", "semCtrl", "Power to detect 25% effects",
    "Gene TSS", "Normalized HiC Contacts", "DHS (RPM)", "H3K27ac (RPM)", "Activity",
    "ABC Score", "Reference")
FULCO_REQUIRED = ("chr", "start", "end", "Gene", "Significant", "Fraction change in gene expr")
TRUE, FALSE = ("TRUE", "True", "true", "1"), ("FALSE", "False", "false", "0")


@dataclasses.dataclass(frozen=True)
class Pair:
  """A tested element-gene pair; tss None when the file gives none; line: its file line."""

  chrom: str
  start: int
  end: int
  gene: str
  ensembl: str | None
  tss: int | None
  positive: bool
  line: int


def open_text(path: pathlib.Path):
  """A text file, gzip-compressed (by its magic bytes) or not."""
  with open(path, "rb") as f:
    gz = f.read(2) == b"\x1f\x8b"
  return gzip.open(path, "rt", newline="") if gz else open(path, newline="")


def read_table(path: str | os.PathLike, required: Sequence[str], what: str, *,
               header_within: int = 1) -> tuple[list[str], Iterator[tuple[int, dict]]]:
  """(header, iterator of (file line, {column: text})) of a tab-separated table; its header
  is the first of the first `header_within` lines holding every `required` column. A
  missing column, or a row with too few fields, is refused naming the file (and line)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise MissingInputError(f"{what} {path}: no such file")
  with open_text(path) as f:
    lines = f.read().splitlines()
  header, first = None, 0
  for first, line in enumerate(lines[:header_within]):
    fields = line.split("\t")
    if all(c in fields for c in required):
      header = fields
      break
  if header is None:
    fields = lines[0].split("\t") if lines else []
    missing = [c for c in required if c not in fields]
    raise DataFormatError(f"{what} {path}: no column {', '.join(map(repr, missing))} in the "
                          f"header (expected the columns {', '.join(required)})")

  def rows():
    for n, line in enumerate(lines[first + 1:], start=first + 2):
      if not line.strip():
        continue
      fields = line.split("\t")
      if len(fields) < len(header):
        raise DataFormatError(f"{what} {path} line {n}: {len(fields)} fields, the header "
                              f"has {len(header)}")
      yield n, dict(zip(header, fields))

  return header, rows()


def _value(path, n: int, row: dict, column: str, kind):
  text = row[column].strip()
  try:
    if kind is bool:
      if text not in TRUE + FALSE:
        raise ValueError
      return text in TRUE
    return kind(float(text)) if kind is int and "." in text else kind(text)
  except ValueError:
    expected = "TRUE or FALSE" if kind is bool else f"a number ({kind.__name__})"
    raise DataFormatError(f"benchmark {path} line {n}: column {column!r} is {text!r}, "
                          f"expected {expected}") from None


def read_benchmark(path: str | os.PathLike, chrom_lengths: dict[str, int] | None = None
                   ) -> tuple[str, list[Pair], int]:
  """(layout 'EPCrisprBenchmark' or 'Fulco2019', the valid pairs, pairs left out because
  ValidConnection is not TRUE). With `chrom_lengths`, a pair on another chromosome is
  refused naming its line."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise MissingInputError(f"benchmark {path}: no such file")
  with open_text(path) as f:
    head = f.read(1 << 16)
  fulco = "Fraction change in gene expr" in head and "chromStart" not in head
  required = FULCO_REQUIRED if fulco else EP_REQUIRED
  header, rows = read_table(path, required, "benchmark", header_within=2 if fulco else 1)
  pairs, invalid = [], 0
  cols = (("chr", "start", "end", "Gene", "Gene TSS") if fulco else
          ("chrom", "chromStart", "chromEnd", "measuredGeneSymbol", "startTSS"))
  for n, row in rows:
    if not fulco and row["ValidConnection"].strip() != "TRUE":
      invalid += 1
      continue
    chrom = row[cols[0]].strip()
    if chrom_lengths is not None and chrom not in chrom_lengths:
      raise DataFormatError(f"benchmark {path} line {n}: unknown chromosome {chrom!r} (column "
                            f"{cols[0]!r}; --chrom-sizes has {', '.join(list(chrom_lengths)[:4])}"
                            ", ...)")
    start, end = _value(path, n, row, cols[1], int), _value(path, n, row, cols[2], int)
    if not 0 <= start < end:
      raise DataFormatError(f"benchmark {path} line {n}: expected 0 <= {cols[1]} < {cols[2]}, "
                            f"got {start}, {end}")
    tss = (_value(path, n, row, cols[4], int) if cols[4] in header
           and row[cols[4]].strip() not in ("", "NA") else None)
    if fulco:
      positive = (_value(path, n, row, "Significant", bool)
                  and _value(path, n, row, "Fraction change in gene expr", float) < 0)
    else:
      positive = _value(path, n, row, "Regulated", bool)
    ensembl = row.get("measuredGeneEnsemblId", "").strip() or None
    pairs.append(Pair(chrom, start, end, row[cols[3]].strip(), ensembl, tss, positive, n))
  return ("Fulco2019" if fulco else "EPCrisprBenchmark"), pairs, invalid


def read_gene_names(path: str | os.PathLike) -> dict[str, str]:
  """{Ensembl id: gene symbol} of a GeneExp/ABC gene table (GeneList.txt: `name` holds the
  Ensembl id, `gene_name` the symbol)."""
  _, rows = read_table(path, ("name", "gene_name"), "gene table")
  return {row["name"].strip(): row["gene_name"].strip() or row["name"].strip()
          for _, row in rows}


def _deletion_change(total: float, effect: float, constants: dict, stats: dict) -> float:
  """Fraction change of 1 + CAGE that the noise-free formula (data_pipeline/synth/labels.py)
  gives a gene with summed element effects `total` when one of effect `effect` is gone."""
  ref = constants["ACTIVITY_REF"]
  drive, deleted = math.log1p(total / ref), math.log1p(max(total - effect, 0.0) / ref)
  return 10 ** (constants["W_DRIVE"] * (deleted - drive) / stats["drive_sd"]) - 1


def synthetic_rows(data_root: str | os.PathLike, cell_type: str = "K562",
                   genes: set[str] | None = None) -> list[dict[str, str]]:
  """EP_COLUMNS rows of a synthetic data root's planted elements (those of `genes` when
  given), each with its own gene; measuredGeneSymbol is the gene table's `gene_name`."""
  layout = GeneExpLayout(data_root, cell_type)
  elements_tsv = layout.truth_dir / "elements.tsv"
  labels = json.loads((layout.truth_dir / "labels.json").read_text()) \
      if (layout.truth_dir / "labels.json").is_file() else None
  _, gene_rows = read_table(layout.gene_table, ("name", "tss", "gene_name"), "gene table")
  table = {row["name"]: row for _, row in gene_rows}
  _, rows = read_table(elements_tsv, ("chrom", "start", "end", "ensid", "class", "effect"),
                       "truth")
  elements = [row for _, row in rows if genes is None or row["ensid"] in genes]
  totals: dict[str, float] = {}
  for e in elements:
    totals[e["ensid"]] = totals.get(e["ensid"], 0.0) + float(e["effect"])
  out = []
  for e in elements:
    gene = table.get(e["ensid"])
    if gene is None:
      raise DataFormatError(f"{elements_tsv}: gene {e['ensid']} is not in {layout.gene_table}")
    symbol, tss, causal = gene["gene_name"] or e["ensid"], int(gene["tss"]), e["class"] == "causal"
    change = (_deletion_change(totals[e["ensid"]], float(e["effect"]), labels["constants"],
                               labels["stats"]) if labels else float("nan"))
    out.append({
        "chrom": e["chrom"], "chromStart": e["start"], "chromEnd": e["end"],
        "name": f"{symbol}|{e['chrom']}:{e['start']}-{e['end']}:*",
        "EffectSize": f"{change:.6g}" if math.isfinite(change) else "NA",
        "chrTSS": e["chrom"], "startTSS": str(tss), "endTSS": str(tss + 1),
        "measuredGeneSymbol": symbol, "Significant": "TRUE" if causal else "FALSE",
        "pValueAdjusted": "NA", "PowerAtEffectSize25": "NA", "ValidConnection": "TRUE",
        "CellType": cell_type, "Reference": f"seq2exp synth truth ({e['class']})",
        "Regulated": "TRUE" if causal else "FALSE"})
  return out


def write_benchmark(path: str | os.PathLike, rows: Sequence[dict[str, str]]) -> None:
  """EP_COLUMNS rows as an EPCrisprBenchmark TSV, sorted by chrom, start; atomic."""
  rows = sorted(rows, key=lambda r: (r["chrom"], int(r["chromStart"]), r["measuredGeneSymbol"]))
  io.write_text(path, "\t".join(EP_COLUMNS) + "\n" + "".join(
      "\t".join(r[c] for c in EP_COLUMNS) + "\n" for r in rows))
