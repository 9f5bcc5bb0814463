"""Where the synthetic genes and elements go: real K562 neighbourhoods, compacted.

Each chosen gene brings its real neighbourhood from the shipped subset (resources/): its
strand, promoter read counts, mRNA features and fold split, and the real candidate elements
of its window with their real DNase and H3K27ac read counts, at their real offsets from the
TSS. Genes keep their real chromosome names and order, but the chromosomes are compacted:
each gene's window [tss - L/2, tss + L/2) is laid next to the previous one with a short
intergenic gap, so no two windows overlap and every element belongs to exactly one gene.
The first gene of the first chromosome and the last gene of the last chromosome hang L/4
over the chromosome start and end, so padding beyond chromosome ends is exercised.

Every element gets one class, in exact proportions CLASS_FRACTIONS over the data set:
"causal" (grammar units, in contact), "insulated" (grammar units, out of contact), "dead"
(silent liver-factor units) and "split" (broken grammar). Which elements are causal follows
a per-gene propensity (normal, sd CAUSAL_PROPENSITY_SD on the logit scale) plus logistic
noise, so some genes are driven by most of their accessible neighbourhood and others by
little of it: the total signal in a window does not give the answer away.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import gzip
import importlib.resources
import io
import json

import numpy as np

from data_pipeline.errors import InputError

CLASS_FRACTIONS: dict[str, float] = {
    "causal": 0.4, "insulated": 0.2, "dead": 0.2, "split": 0.2}
# Number of grammar (or look-alike) units per element and their probabilities.
# Spread (sd, logit scale) of the per-gene propensity of elements to be causal.
CAUSAL_PROPENSITY_SD = 2.0
UNIT_COUNTS = np.array([1, 2, 3])
UNIT_PROBS = np.array([0.5, 0.3, 0.2])
VALID_CHROMS_FOLD11 = ("chr3", "chr21")
FOLD11_SHARES = {"valid": 0.067, "test": 0.064}  # the real split's shares of genes


@dataclasses.dataclass(frozen=True)
class Gene:
  """One gene: real attributes, synthetic coordinates (`tss`, `start`, `end`)."""
  ensid: str
  symbol: str
  chrom: str
  tss: int
  strand: str
  start: int
  end: int
  dhs_tss1kb: float          # real read counts in TSS +- 500 bp
  h3k27ac_tss1kb: float
  dhs_rpm: float             # the same per million reads of the source tables
  h3k27ac_rpm: float
  rna: tuple[str, ...]       # the 8 mRNA features, as written in the real table
  folds: tuple[str, ...]     # fold_1..fold_12, fold_enformer
  real_tss: int


@dataclasses.dataclass(frozen=True)
class Elements:
  """Candidate elements, one row each (n elements), sorted by (chrom, start).

  gene: int (n,) index into Landscape.genes; start, end: int (n,) synthetic coordinates;
  dhs, h3k27ac: float (n,) real read counts; klass: str (n,); units: int (n,) number of
  grammar (or look-alike) units planted.
  """
  gene: np.ndarray
  start: np.ndarray
  end: np.ndarray
  dhs: np.ndarray
  h3k27ac: np.ndarray
  klass: np.ndarray
  units: np.ndarray


@dataclasses.dataclass(frozen=True)
class Landscape:
  genes: list[Gene]
  elements: Elements
  chrom_lengths: dict[str, int]
  window: int


def _read_resource(name: str) -> list[dict[str, str]]:
  raw = importlib.resources.files("data_pipeline").joinpath(f"resources/{name}").read_bytes()
  return list(csv.DictReader(io.StringIO(gzip.decompress(raw).decode()), delimiter="\t"))


@functools.cache
def shipped_subset() -> tuple[list[dict[str, str]], dict[str, list[tuple[int, int, float, float]]]]:
  """(gene rows, ensid -> [(offset, width, dhs, h3k27ac)]) of resources/."""
  genes = _read_resource("genes.tsv.gz")
  elements: dict[str, list[tuple[int, int, float, float]]] = {}
  for r in _read_resource("elements.tsv.gz"):
    elements.setdefault(r["ensid"], []).append(
        (int(r["offset"]), int(r["width"]), float(r["dhs"]), float(r["h3k27ac"])))
  return genes, elements


@functools.cache
def read_totals() -> dict[str, float]:
  """Reads counted per mark in the source tables (the RPM denominator; see PROVENANCE.md)."""
  return json.loads(importlib.resources.files("data_pipeline").joinpath(
      "resources/read_totals.json").read_text())


def chrom_sort_key(chrom: str) -> tuple[int, str]:
  name = chrom.removeprefix("chr")
  return (int(name), "") if name.isdigit() else (100, name)


def choose_genes(rng: np.random.Generator, n_genes: int, window: int, min_elements: int,
                 chroms: tuple[str, ...] | None, fold: int = 11,
                 shares: tuple[float, float] | None = None) -> list[dict[str, str]]:
  """Draws `n_genes` shipped genes with >= `min_elements` elements inside the window.

  Stratified on the real split of `fold` so train, valid and test are all non-empty, with
  (valid, test) `shares` of the genes (default: fold 11's); returns rows in (chromosome,
  real TSS) order.
  """
  genes, elements = shipped_subset()
  half = window // 2
  pools: dict[str, list[dict[str, str]]] = {"train": [], "valid": [], "test": []}
  for g in genes:
    if chroms is not None and g["chrom"] not in chroms:
      continue
    inside = sum(1 for off, w, _, _ in elements.get(g["ensid"], ())
                 if off >= -half and off + w <= half)
    if inside >= min_elements:
      pools[g[f"fold_{fold}"]].append(g)
  valid_share, test_share = shares or (FOLD11_SHARES["valid"], FOLD11_SHARES["test"])
  n_valid = max(1, round(n_genes * valid_share))
  n_test = max(1, round(n_genes * test_share))
  wanted = {"train": n_genes - n_valid - n_test, "valid": n_valid, "test": n_test}
  if wanted["train"] < 1:
    raise InputError(f"--genes {n_genes}: need at least 3 genes (one per fold_{fold} split)")
  chosen = []
  for split, k in wanted.items():
    pool = pools[split]
    if len(pool) < k:
      raise InputError(
          f"--genes {n_genes} with --window {window}: only {len(pool)} shipped {split} genes "
          f"have >= {min_elements} elements in the window, {k} needed")
    idx = np.sort(rng.choice(len(pool), size=k, replace=False))
    chosen += [pool[i] for i in idx]
  return sorted(chosen, key=lambda g: (chrom_sort_key(g["chrom"]), int(g["tss"]), g["ensid"]))


def lay_out(rng: np.random.Generator, rows: list[dict[str, str]], window: int) -> Landscape:
  """Places the chosen genes on compacted chromosomes and assigns element classes."""
  _, elements = shipped_subset()
  totals = read_totals()
  half = window // 2
  chrom_order = sorted({r["chrom"] for r in rows}, key=chrom_sort_key)
  genes: list[Gene] = []
  el_rows: list[tuple[int, int, int, float, float]] = []
  lengths: dict[str, int] = {}
  for ci, chrom in enumerate(chrom_order):
    on_chrom = [r for r in rows if r["chrom"] == chrom]
    # Window start of the first gene: the very first one hangs over the chromosome start.
    cursor = -window // 4 if ci == 0 else int(rng.integers(window // 16, window // 4 + 1))
    for gi, r in enumerate(on_chrom):
      tss = cursor + half
      shift = tss - int(r["tss"])
      start = max(0, int(r["gene_start"]) + shift)
      genes.append(Gene(
          ensid=r["ensid"], symbol=r["symbol"], chrom=chrom, tss=tss, strand=r["strand"],
          start=start, end=max(start + 1, int(r["gene_end"]) + shift),
          dhs_tss1kb=float(r["dhs_tss1kb"]), h3k27ac_tss1kb=float(r["h3k27ac_tss1kb"]),
          dhs_rpm=float(r["dhs_tss1kb"]) * 1e6 / totals["dhs"],
          h3k27ac_rpm=float(r["h3k27ac_tss1kb"]) * 1e6 / totals["h3k27ac"],
          rna=tuple(r[c] for c in _RNA), folds=tuple(r[c] for c in _FOLDS),
          real_tss=int(r["tss"])))
      for off, w, dhs, h3 in elements.get(r["ensid"], ()):
        if off >= -half and off + w <= half and tss + off >= 0:
          el_rows.append((len(genes) - 1, tss + off, tss + off + w, dhs, h3))
      cursor += window
      if gi < len(on_chrom) - 1:
        cursor += int(rng.integers(window // 16, window // 4 + 1))
    last = ci == len(chrom_order) - 1
    lengths[chrom] = cursor - window // 4 if last else cursor + int(
        rng.integers(window // 16, window // 4 + 1))
  # Drop elements cut by the shortened end of the last chromosome.
  el_rows = [e for e in el_rows if e[2] <= lengths[genes[e[0]].chrom]]
  genes = [dataclasses.replace(g, end=min(g.end, lengths[g.chrom])) for g in genes]
  n = len(el_rows)
  counts = {k: int(np.floor(f * n)) for k, f in CLASS_FRACTIONS.items()}
  counts["causal"] += n - sum(counts.values())
  # Causal elements go where key = gene propensity + logistic noise is highest, so genes
  # differ in how much of their accessible neighbourhood really drives them; the decoy
  # classes are then shuffled over the rest.
  gene_propensity = rng.normal(0.0, CAUSAL_PROPENSITY_SD, size=len(genes))
  gene_of = np.array([e[0] for e in el_rows], np.int64)
  key = gene_propensity[gene_of] + rng.logistic(size=n)
  order = np.argsort(-key, kind="stable")
  klass = np.empty(n, dtype=object)
  klass[order[:counts["causal"]]] = "causal"
  rest = order[counts["causal"]:]
  rest = rest[rng.permutation(len(rest))]
  decoys = [k for k in CLASS_FRACTIONS if k != "causal" for _ in range(counts[k])]
  klass[rest] = np.array(decoys, dtype=object)
  units = rng.choice(UNIT_COUNTS, size=n, p=UNIT_PROBS)
  cols = list(zip(*el_rows)) if el_rows else [[]] * 5
  elements_out = Elements(
      gene=np.asarray(cols[0], np.int64), start=np.asarray(cols[1], np.int64),
      end=np.asarray(cols[2], np.int64), dhs=np.asarray(cols[3], np.float64),
      h3k27ac=np.asarray(cols[4], np.float64), klass=klass.astype(str), units=units)
  return Landscape(genes=genes, elements=elements_out, chrom_lengths=lengths, window=window)


_RNA = ("UTR5LEN_log10zscore", "CDSLEN_log10zscore", "INTRONLEN_log10zscore",
        "UTR3LEN_log10zscore", "UTR5GC", "CDSGC", "UTR3GC", "ORFEXONDENSITY")
_FOLDS = tuple(f"fold_{i}" for i in range(1, 13)) + ("fold_enformer",)
