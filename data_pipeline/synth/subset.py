"""Builds the small real K562 subset that the synthetic genome is grounded in.

A developer tool, run once; its outputs are shipped in `data_pipeline/resources/` and the
package never reads the source tables at run or test time:

  python -m data_pipeline.synth.subset --real REAL_DIR \
      --jaspar-sqlite pyjaspar/data/JASPAR2024.sqlite --out data_pipeline/resources

REAL_DIR holds the real K562 tables (gene list, candidate elements with their DNase and
H3K27ac counts, mRNA features, fold split; see resources/PROVENANCE.md for their source).

Genes: every gene of the benchmark whose real 200 kb window does not overlap the window of
the previously kept gene on its chromosome (a greedy sweep in TSS order), so no real
candidate element is shipped twice. Elements: the real candidate elements whose 500 bp
interval lies inside that gene's 200 kb window and does not touch its promoter (TSS +- 1 kb),
stored as offsets from the TSS with their real DNase and H3K27ac read counts. Motifs: the
JASPAR 2024 CORE matrices named in MOTIFS, copied from the SQLite file that the PyPI package
pyjaspar 4.0.0 ships.
"""

from __future__ import annotations

import argparse
import collections
import csv
import gzip
import json
import os
import pathlib
import sqlite3
import tempfile

WINDOW = 200_000
PROMOTER_HALF = 1_000
# JASPAR (base id, version): role in the synthetic grammar (see motifs.py).
MOTIFS: tuple[tuple[str, int], ...] = (
    ("MA0035", 4),  # GATA1: activator, first half of the causal grammar
    ("MA0493", 3),  # KLF1: activator, second half of the causal grammar
    ("MA0114", 5),  # HNF4A: liver factor, silent in K562 ("dead" decoy pair)
    ("MA0047", 4),  # FOXA2: liver factor, silent in K562 ("dead" decoy pair)
)
RNA_COLUMNS = ("UTR5LEN_log10zscore", "CDSLEN_log10zscore", "INTRONLEN_log10zscore",
               "UTR3LEN_log10zscore", "UTR5GC", "CDSGC", "UTR3GC", "ORFEXONDENSITY")
FOLD_COLUMNS = tuple(f"fold_{i}" for i in range(1, 13)) + ("fold_enformer",)


def _rows(path: pathlib.Path, delimiter: str = "\t") -> list[list[str]]:
  with gzip.open(path, "rt", newline="") as fh:
    return list(csv.reader(fh, delimiter=delimiter))


def _write_gz_tsv(path: pathlib.Path, header: list[str], rows: list[list]) -> None:
  fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
  os.close(fd)
  # No file name and mtime 0 in the gzip header keep the bytes reproducible.
  with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb",
                                             mtime=0) as gz:
    text = "\t".join(header) + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows)
    gz.write(text.encode())
  os.chmod(tmp, 0o644)
  os.replace(tmp, path)


def read_totals(real: pathlib.Path) -> dict[str, float]:
  """Reads counted per mark over all TSS +- 500 bp regions and candidate elements of the
  source tables: the per-million denominator of the shipped RPM values (the tables do not
  give the libraries' sizes)."""
  totals = {}
  for mark, bam in (("dhs", "DHS.ENCFF257HEE"), ("h3k27ac", "H3K27ac.ENCFF232RQF")):
    totals[mark] = sum(float(r[3]) for kind in ("Genes.TSS1kb", "Enhancers")
                       for r in _rows(real / f"{kind}.{bam}.bam.CountReads.bedgraph.gz"))
  return totals


def build_genes_and_elements(real: pathlib.Path) -> tuple[list[list], list[list]]:
  """Returns (gene rows, element rows) of the shipped subset."""
  genes = _rows(real / "GeneList.bed.gz")
  mrna = {r[2]: r for r in _rows(real / "mRNA_halflife_features.csv.gz", ",")[1:]}
  mrna_header = _rows(real / "mRNA_halflife_features.csv.gz", ",")[0]
  rna_idx = [mrna_header.index(c) for c in RNA_COLUMNS]
  folds = _rows(real / "leave_chrom_out_crossvalidation_split_18377genes.csv.gz", ",")
  fold_idx = [folds[0].index(c) for c in FOLD_COLUMNS]
  fold_by_id = {r[0]: r for r in folds[1:]}
  # Promoter counts are keyed by their TSS +- 500 bp interval (genes sharing a TSS share it).
  prom: dict[str, dict[tuple[str, int], str]] = {}
  for mark, name in (("dhs", "Genes.TSS1kb.DHS.ENCFF257HEE.bam.CountReads.bedgraph.gz"),
                     ("h3k27ac", "Genes.TSS1kb.H3K27ac.ENCFF232RQF.bam.CountReads.bedgraph.gz")):
    prom[mark] = {(r[0], int(r[1]) + 500): r[3] for r in _rows(real / name)}
  dhs = _rows(real / "Enhancers.DHS.ENCFF257HEE.bam.CountReads.bedgraph.gz")
  h3 = _rows(real / "Enhancers.H3K27ac.ENCFF232RQF.bam.CountReads.bedgraph.gz")
  elements_by_chrom: dict[str, list[tuple[int, int, str, str]]] = collections.defaultdict(list)
  for d, h in zip(dhs, h3):
    if d[:3] != h[:3]:
      raise ValueError(f"element tables disagree: {d[:3]} vs {h[:3]}")
    elements_by_chrom[d[0]].append((int(d[1]), int(d[2]), d[3], h[3]))

  by_chrom: dict[str, list[tuple[int, list[str]]]] = collections.defaultdict(list)
  for r in genes:
    chrom, start, end, ensid, _, strand = r
    tss = int(start) if strand == "+" else int(end)
    if ensid in mrna and ensid in fold_by_id and (chrom, tss) in prom["dhs"]:
      by_chrom[chrom].append((tss, r))
  gene_rows, element_rows = [], []
  for chrom in sorted(by_chrom, key=_chrom_key):
    last = None
    ordered = sorted(by_chrom[chrom], key=lambda t: (t[0], t[1][3]))
    for tss, (_, start, end, ensid, _, strand) in ordered:
      if last is not None and tss - last < WINDOW:
        continue
      last = tss
      m, f = mrna[ensid], fold_by_id[ensid]
      gene_rows.append([ensid, f[-1], chrom, tss, strand, start, end,
                        prom["dhs"][(chrom, tss)], prom["h3k27ac"][(chrom, tss)]]
                       + [m[i] for i in rna_idx] + [f[i] for i in fold_idx])
      for s, e, dc, hc in elements_by_chrom[chrom]:
        if s >= tss - WINDOW // 2 and e <= tss + WINDOW // 2 and not (
            e > tss - PROMOTER_HALF and s < tss + PROMOTER_HALF):
          element_rows.append([ensid, s - tss, e - s, dc, hc])
  return gene_rows, element_rows


def _chrom_key(chrom: str) -> tuple[int, str]:
  name = chrom.removeprefix("chr")
  return (int(name), "") if name.isdigit() else (100, name)


def write_jaspar(sqlite_path: pathlib.Path, out: pathlib.Path) -> None:
  """Copies the MOTIFS count matrices into one JASPAR-format text file."""
  con = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
  lines = []
  for base, version in MOTIFS:
    found = list(con.execute(
        "SELECT ID, NAME FROM MATRIX WHERE BASE_ID = ? AND VERSION = ?", (base, version)))
    if len(found) != 1:
      raise ValueError(f"{sqlite_path}: matrix {base}.{version} not found exactly once")
    (mid, name), = found
    rows: dict[str, list[float]] = collections.defaultdict(list)
    for row, _, val in con.execute(
        "SELECT row, col, val FROM MATRIX_DATA WHERE ID = ? ORDER BY row, col", (mid,)):
      rows[row].append(val)
    lines.append(f">{base}.{version}\t{name}")
    for base_letter in "ACGT":
      lines.append(f"{base_letter}  [ " + " ".join(f"{v:.0f}" for v in rows[base_letter]) + " ]")
  fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
  with os.fdopen(fd, "w") as fh:
    fh.write("\n".join(lines) + "\n")
  os.chmod(tmp, 0o644)
  os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--real", type=pathlib.Path, required=True)
  parser.add_argument("--jaspar-sqlite", type=pathlib.Path, required=True)
  parser.add_argument("--out", type=pathlib.Path, required=True)
  args = parser.parse_args(argv)
  args.out.mkdir(parents=True, exist_ok=True)
  genes, elements = build_genes_and_elements(args.real)
  _write_gz_tsv(args.out / "genes.tsv.gz",
                ["ensid", "symbol", "chrom", "tss", "strand", "gene_start", "gene_end",
                 "dhs_tss1kb", "h3k27ac_tss1kb", *RNA_COLUMNS, *FOLD_COLUMNS], genes)
  _write_gz_tsv(args.out / "elements.tsv.gz",
                ["ensid", "offset", "width", "dhs", "h3k27ac"], elements)
  write_jaspar(args.jaspar_sqlite, args.out / "motifs.jaspar")
  fd, tmp = tempfile.mkstemp(dir=args.out, suffix=".tmp")
  with os.fdopen(fd, "w") as fh:
    json.dump(read_totals(args.real), fh, indent=1)
    fh.write("\n")
  os.chmod(tmp, 0o644)
  os.replace(tmp, args.out / "read_totals.json")
  print(f"{len(genes)} genes, {len(elements)} elements -> {args.out}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
