"""Variant effects: the predicted expression of every gene whose window holds a variant,
with the reference and with the alternative allele.

* `read_vcf` reads a VCF (plain or bgzipped) with pysam: one `Variant` per ALT allele,
  each with its line in the file. A record pysam cannot parse, a chromosome the data set
  does not have, a position past the chromosome's end, or an allele that is not a sequence
  of A, C, G, T, N (symbolic `<DEL>`, `*`, breakends) is a DataFormatError naming the file
  and the line. Records without an ALT (`.`) are skipped and counted.
* `alt_example` builds the alternative window of one gene from its stored reference
  window (host numpy, data set codes A=0 C=1 G=2 T=3 N=4). An SNV (or a substitution of
  equal length) changes the bases and nothing else. An indel changes the length by
  d = len(ALT) - len(REF); the window keeps L bases with the TSS at L // 2: for a variant
  starting upstream of the TSS (window index < L // 2) everything from the end of REF on
  keeps its index and the sequence upstream of ALT shifts by d away from the TSS; for one
  starting at or after it, everything before the variant keeps its index and the rest
  shifts. An insertion pushes d bases out at the far edge; a deletion leaves |d| bases at
  the far edge that the stored window does not have: they are N with zero signals (as
  past a chromosome end). The other per-base fields (signals, blacklist, peaks, ...) move
  with their bases; inserted bases take the values of the REF base they follow.
* `score_variants` streams a split once: for each gene whose (model) window holds a
  variant's whole REF, REF is checked against the stored sequence (a mismatch is a
  DataFormatError naming the VCF line), and the reference and every alternative window go
  through the model in batches. `mask` is the largest reference mask over the REF bases.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import pathlib
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from jaxtyping import Integer

from data_pipeline.batch import PER_BASE, Batch
from data_pipeline.errors import DataFormatError, MissingInputError
from data_pipeline.io import atomic_output
from seq2exp_jax.model.outputs import ModelOutput

CODES = {b: i for i, b in enumerate("ACGTN")}
ALLELE = re.compile(r"^[ACGTN]+$")
MAX_ALLELE = 1000  # bp, the longest REF or ALT scored ("short" indels)
COLUMNS = ("chr", "pos", "id", "ref", "alt", "ensid", "tss", "distance_to_tss",
           "ref_prediction", "alt_prediction", "delta", "mask")
HOST_FIELDS = ("ensid", "chrom", "tss")


@dataclasses.dataclass(frozen=True)
class Variant:
  """One ALT allele of a VCF record; pos is 1-based (VCF POS), line the record's line."""

  line: int
  chrom: str
  pos: int
  id: str
  ref: str
  alt: str

  @property
  def start(self) -> int:
    """0-based first base of REF."""
    return self.pos - 1

  @property
  def end(self) -> int:
    """0-based end (exclusive) of REF."""
    return self.pos - 1 + len(self.ref)


def _open_text(path: pathlib.Path):
  with open(path, "rb") as f:
    magic = f.read(2)
  return gzip.open(path, "rt") if magic == b"\x1f\x8b" else open(path)


def _header_lines(path: pathlib.Path) -> int:
  """Lines before the first record (the `##` meta lines and `#CHROM`)."""
  n = 0
  with _open_text(path) as f:
    for line in f:
      if not line.startswith("#"):
        break
      n += 1
  return n


def _line_text(path: pathlib.Path, number: int) -> str:
  with _open_text(path) as f:
    for n, line in enumerate(f, start=1):
      if n == number:
        return line.rstrip("\n")[:120]
  return "<end of file>"


def _check_record(path: pathlib.Path, line: int, record: Any,
                  chrom_sizes: dict[str, int]) -> list[Variant]:
  where = f"{path}: line {line}"
  chrom = record.chrom
  if chrom not in chrom_sizes:
    other = [c for c in (f"chr{chrom}", chrom.removeprefix("chr")) if c in chrom_sizes]
    hint = f" (it has {other[0]!r})" if other else f" ({', '.join(list(chrom_sizes)[:4])}...)"
    raise DataFormatError(f"{where}: chromosome {chrom!r} is not in the data set{hint}")
  ref = record.ref.upper()
  if not ALLELE.match(ref):
    raise DataFormatError(f"{where}: REF {record.ref!r}: expected bases A, C, G, T, N")
  if record.pos < 1 or record.pos - 1 + len(ref) > chrom_sizes[chrom]:
    raise DataFormatError(f"{where}: {chrom}:{record.pos} REF {record.ref}: outside the "
                          f"chromosome (1..{chrom_sizes[chrom]})")
  out = []
  for alt in record.alts or ():
    if not ALLELE.match(alt.upper()):
      raise DataFormatError(f"{where}: ALT {alt!r}: only sequence alleles (A, C, G, T, N) "
                            "are scored, not symbolic alleles, '*' or breakends")
    if max(len(ref), len(alt)) > MAX_ALLELE:
      raise DataFormatError(f"{where}: REF/ALT of {max(len(ref), len(alt))} bp: only "
                            f"alleles up to {MAX_ALLELE} bp are scored")
    out.append(Variant(line, chrom, int(record.pos), record.id or ".", ref, alt.upper()))
  return out


def read_vcf(path: str | os.PathLike, chrom_sizes: dict[str, int]
             ) -> tuple[list[Variant], int]:
  """(variants, records skipped for having no ALT); see the module docstring."""
  import pysam  # noqa: PLC0415  (htslib: loaded only by the commands that read VCFs)
  path = pathlib.Path(path)
  if not path.is_file():
    raise MissingInputError(f"{path}: no such VCF file")
  verbosity = pysam.set_verbosity(0)  # htslib's own stderr lines would break the policy
  try:
    try:
      vcf = pysam.VariantFile(str(path))
    except (ValueError, OSError) as e:
      raise DataFormatError(f"{path}: not a VCF file (expected ## meta lines and the "
                            f"#CHROM header line, plain or bgzipped): {e}") from e
    first = _header_lines(path) + 1
    variants, skipped, index = [], 0, 0
    records = iter(vcf)
    while True:
      try:
        record = next(records)
      except StopIteration:
        break
      except (ValueError, OSError) as e:
        line = first + index
        raise DataFormatError(f"{path}: line {line}: not a valid VCF record ({e}; expected "
                              f"8+ tab-separated fields CHROM POS ID REF ALT QUAL FILTER "
                              f"INFO): {_line_text(path, line)!r}") from e
      found = _check_record(path, first + index, record, chrom_sizes)
      skipped += not found
      variants += found
      index += 1
    vcf.close()
  finally:
    pysam.set_verbosity(verbosity)
  return variants, skipped


def write_vcf(path: str | os.PathLike, variants: Iterable[Variant],
              chrom_sizes: dict[str, int]) -> None:
  """A VCF 4.2 of `variants` (one record each; `line` is ignored), contigs from
  `chrom_sizes`, sorted by chromosome (in `chrom_sizes` order) and position; atomic."""
  import pysam  # noqa: PLC0415
  order = {c: i for i, c in enumerate(chrom_sizes)}
  header = pysam.VariantHeader()
  for chrom, size in chrom_sizes.items():
    header.contigs.add(chrom, length=int(size))
  with atomic_output(path) as tmp:
    with pysam.VariantFile(str(tmp), "w", header=header) as vcf:
      for v in sorted(variants, key=lambda v: (order[v.chrom], v.pos, v.ref, v.alt)):
        vcf.write(vcf.new_record(contig=v.chrom, start=v.start, alleles=(v.ref, v.alt),
                                 id=None if v.id == "." else v.id))


# ------------------------------------------------------------------ alternative windows

def allele_source(length: int, p: int, ref_len: int, alt_len: int
                  ) -> tuple[np.ndarray, int]:
  """(src (L,) int64, alt_start): base i of the alternative window is base src[i] of the
  reference window (-1: not stored, filled as N); ALT occupies [alt_start, alt_start +
  alt_len) (clipped to the window). REF is at window indices [p, p + ref_len)."""
  if not (0 <= p and p + ref_len <= length and ref_len >= 1 and alt_len >= 1):
    raise ValueError(f"REF [{p}, {p + ref_len}) of a {length} bp window, ALT {alt_len} bp")
  i = np.arange(length)
  d = alt_len - ref_len
  alt_start = p + ref_len - alt_len if p < length // 2 else p
  in_alt = (i >= alt_start) & (i < alt_start + alt_len)
  src = np.where(i < alt_start, i + d, i) if p < length // 2 else np.where(
      i < p, i, i - d)
  src = np.where(in_alt, p + np.minimum(i - alt_start, ref_len - 1), src)
  src = np.where((src < 0) | (src >= length), -1, src)
  return src, alt_start


def alt_example(example: dict[str, np.ndarray], p: int, ref_len: int, alt: str
                ) -> dict[str, np.ndarray]:
  """The example (one gene, host numpy, per-base fields position first) with REF at window
  index p replaced by `alt`; see the module docstring."""
  length = len(example["dna"])
  src, alt_start = allele_source(length, p, ref_len, len(alt))
  fill = src < 0
  out = dict(example)
  for key in PER_BASE:
    if key in example:
      moved = np.asarray(example[key])[np.maximum(src, 0)]
      moved[fill] = 4 if key == "dna" else 0
      out[key] = moved
  codes = np.array([CODES[b] for b in alt], np.uint8)
  lo, hi = max(alt_start, 0), min(alt_start + len(alt), length)
  out["dna"][lo:hi] = codes[lo - alt_start:hi - alt_start]
  return out


def check_ref(vcf: pathlib.Path, v: Variant, stored: Integer[np.ndarray, "R"], ensid: str
              ) -> None:
  """REF against the stored codes of its bases (REF N matches any base)."""
  want = np.array([CODES[b] for b in v.ref])
  if np.any((want != 4) & (want != stored)):
    seq = "".join("ACGTN"[c] for c in stored)
    raise DataFormatError(f"{vcf}: line {v.line}: REF {v.ref} at {v.chrom}:{v.pos} does not "
                          f"match the data set's sequence there, {seq} (window of {ensid}); "
                          "is the VCF on the data set's genome build?")


# ------------------------------------------------------------------ scoring

@dataclasses.dataclass(frozen=True)
class Effect:
  """One (variant, gene) pair: predictions with each allele, mask over REF (nan without
  a mask)."""

  variant: Variant
  ensid: str
  tss: int
  ref_prediction: float
  alt_prediction: float
  mask: float

  def row(self) -> str:
    v = self.variant
    mask = "NA" if math.isnan(self.mask) else f"{self.mask:.6g}"
    return "\t".join(map(str, (
        v.chrom, v.pos, v.id, v.ref, v.alt, self.ensid, self.tss, v.start - self.tss,
        f"{self.ref_prediction:.6g}", f"{self.alt_prediction:.6g}",
        f"{self.alt_prediction - self.ref_prediction:.6g}", mask))) + "\n"


class VariantIndex:
  """Variants by chromosome, sorted by start, for window look-ups."""

  def __init__(self, variants: list[Variant]):
    self.by_chrom: dict[str, tuple[np.ndarray, list[Variant]]] = {}
    for chrom in {v.chrom for v in variants}:
      mine = sorted((v for v in variants if v.chrom == chrom), key=lambda v: (v.start, v.line))
      self.by_chrom[chrom] = (np.array([v.start for v in mine]), mine)

  def within(self, chrom: str, start: int, end: int) -> list[Variant]:
    """Variants whose whole REF lies in [start, end)."""
    if chrom not in self.by_chrom:
      return []
    starts, mine = self.by_chrom[chrom]
    lo, hi = np.searchsorted(starts, [start, end])
    return [v for v in mine[lo:hi] if v.end <= end]


def _rows(vcf: pathlib.Path, examples: Iterator[dict[str, Any]], index: VariantIndex
          ) -> Iterator[tuple[dict[str, Any], Any]]:
  """(example, key) rows to predict: per gene with variants its reference (key: the gene's
  Variant list) then one alternative per variant (key: (gene, Variant))."""
  for ex in examples:
    length, tss = len(ex["dna"]), int(ex["tss"])
    start = tss - length // 2
    found = index.within(str(ex["chrom"]), start, start + length)
    if not found:
      continue
    for v in found:
      check_ref(vcf, v, ex["dna"][v.start - start:v.end - start], str(ex["ensid"]))
    yield ex, found
    for v in found:
      yield alt_example(ex, v.start - start, len(v.ref), v.alt), (str(ex["ensid"]), v)


def score_variants(predict_fn: Callable[[Any, Batch], ModelOutput], params: Any,
                   examples: Iterator[dict[str, Any]], variants: list[Variant],
                   to_batch: Callable[[dict[str, np.ndarray]], Batch], batch_size: int,
                   vcf: str | os.PathLike) -> list[Effect]:
  """Effects of `variants` on every gene of `examples` (one host example per gene, as
  the loader's host batches hold them) whose window holds them; `to_batch` turns a stacked
  host batch of `batch_size` rows into the model's Batch."""
  vcf = pathlib.Path(vcf)
  effects, reference, pending = [], {}, []

  def flush():
    rows = [r for r, _ in pending] + [pending[-1][0]] * (batch_size - len(pending))
    out = predict_fn(params, to_batch({k: np.stack([r[k] for r in rows]) for k in rows[0]}))
    prediction = np.asarray(out.prediction, np.float64)
    mask = None if out.mask is None else np.asarray(out.mask)
    for n, (row, key) in enumerate(pending):
      if isinstance(key, list):  # a reference row: keep its prediction and mask over REF
        ensid, start = str(row["ensid"]), int(row["tss"]) - len(row["dna"]) // 2
        reference[ensid] = (prediction[n], {v: (np.nan if mask is None else float(
            mask[n, v.start - start:v.end - start].max())) for v in key}, int(row["tss"]))
      else:
        ensid, v = key
        ref_prediction, masks, tss = reference[ensid]
        effects.append(Effect(v, ensid, tss, ref_prediction, prediction[n], masks[v]))
    pending.clear()

  for row in _rows(vcf, examples, VariantIndex(variants)):
    pending.append(row)
    if len(pending) == batch_size:
      flush()
  if pending:
    flush()
  return sorted(effects, key=lambda e: (e.variant.line, e.variant.alt, e.ensid))


def write_effects(path: str | os.PathLike, effects: list[Effect]) -> None:
  """The effects table (COLUMNS, tab-separated, pos 1-based as in the VCF); atomic."""
  with atomic_output(path) as tmp:
    tmp.write_text("\t".join(COLUMNS) + "\n" + "".join(e.row() for e in effects))


def host_examples(batches: Iterable[dict[str, np.ndarray]]) -> Iterator[dict[str, Any]]:
  """The valid rows of stacked host batches (ShardedLoader.host_batches) one by one."""
  for batch in batches:
    for i in np.flatnonzero(batch["valid"]):
      yield {k: v[i] for k, v in batch.items()}
