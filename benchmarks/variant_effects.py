"""Do predicted variant effects find the planted grammar? SNVs in the motif sites of causal
elements vs the motif sites of decoys vs background, on a synthetic genome.

  # 1. a VCF of --n SNVs per group in the --split genes' windows (IDs group:ensid:k)
  .venv/bin/python benchmarks/variant_effects.py vcf --data-root SYNTH --data DS \
      --split test --n 200 --out variants.vcf
  # 2. their effects
  .venv/bin/seq2exp score-variants --workdir RUN --data DS --vcf variants.vcf \
      --split test --out effects.tsv
  # 3. mean |delta| per group with 95% bootstrap intervals, and the differences
  .venv/bin/python benchmarks/variant_effects.py summary --effects effects.tsv

Groups (from `seq2exp synth`'s truth/elements.tsv, whose unit_sites give each planted
unit's genome start and strand; data_pipeline/synth/motifs.py its layout):
  causal_motif  a base of a GATA1 or KLF1 site of a unit in a causal element
  decoy_motif   a base of a motif site of a unit in a decoy: the GATA1-KLF1 units of
                insulated elements, the HNF4A-FOXA2 units of dead ones, and of split units
                the site at the unit's start (the other's offset is not stored)
  background    a base outside every element and the promoter (TSS +- 1 kb)
  promoter      a base of the promoter (TSS +- 1 kb, what the centre-pooled head reads):
                a positive control of the measurement, not of the grammar
N bases are never drawn; the ALT is one of the 3 other bases at random.
"""

from __future__ import annotations

import argparse
import csv
import pathlib
import sys
from collections import defaultdict

import numpy as np
from jaxtyping import Float

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from data_pipeline import io  # noqa: E402
from data_pipeline.loader import open_split  # noqa: E402
from data_pipeline.synth import motifs  # noqa: E402
from seq2exp_jax.outputs import variants as var  # noqa: E402

GROUPS = ("causal_motif", "decoy_motif", "background", "promoter")
PROMOTER = 1000


def motif_bases(pos: int, strand: str, klass: str, widths: dict[str, int]) -> list[int]:
  """Genome positions of the motif sites of the unit planted at `pos` (see the docstring)."""
  first, second = {"causal": (motifs.ACTIVATOR_1, motifs.ACTIVATOR_2),
                   "insulated": (motifs.ACTIVATOR_1, motifs.ACTIVATOR_2),
                   "dead": (motifs.DEAD_1, motifs.DEAD_2),
                   "split": (motifs.ACTIVATOR_1, motifs.ACTIVATOR_2)}[klass]
  wa, wb = widths[first], widths[second]
  if klass == "split":  # only the site at the start is known
    return list(range(pos, pos + (wa if strand == "+" else wb)))
  lead, tail = (wa, wb) if strand == "+" else (wb, wa)
  return list(range(pos, pos + lead)) + list(
      range(pos + lead + motifs.SPACER, pos + lead + motifs.SPACER + tail))


def candidates(data_root: pathlib.Path, data: str, split: str) -> tuple[dict, dict]:
  """({group: [(ensid, chrom, genome position)]}, {ensid: (chrom, window start, codes)})."""
  windows = {}
  for example in open_split(data, split):
    codes = np.asarray(example["dna"])
    tss = int(example["tss"])
    windows[example["ensid"].decode()] = (example["chrom"].decode(), tss - len(codes) // 2,
                                          codes, tss)
  widths = {name: m.width for name, m in motifs.load_motifs().items()}
  pools: dict[str, list] = defaultdict(list)
  in_element: dict[str, set] = defaultdict(set)
  with open(data_root / "truth" / "elements.tsv", newline="") as f:
    for row in csv.DictReader(f, delimiter="\t"):
      if row["ensid"] not in windows:
        continue
      in_element[row["ensid"]].update(range(int(row["start"]), int(row["end"])))
      group = "causal_motif" if row["class"] == "causal" else "decoy_motif"
      for site in filter(None, row["unit_sites"].split(";")):
        pos, strand, _ = site.split(":")
        pools[group] += [(row["ensid"], row["chrom"], p)
                         for p in motif_bases(int(pos), strand, row["class"], widths)]
  for ensid, (chrom, start, codes, tss) in windows.items():
    pools["background"] += [(ensid, chrom, start + i) for i in range(len(codes))
                            if start + i not in in_element[ensid]
                            and abs(start + i - tss) > PROMOTER]
    pools["promoter"] += [(ensid, chrom, p) for p in range(tss - PROMOTER, tss + PROMOTER)]
  return pools, windows


def write_variants(args) -> int:
  rng = np.random.default_rng(args.seed)
  pools, windows = candidates(args.data_root, str(args.data), args.split)
  chosen = []
  for group in GROUPS:
    pool = [(e, c, p) for e, c, p in pools[group]
            if windows[e][2][p - windows[e][1]] < 4]  # never an N
    for k, i in enumerate(rng.choice(len(pool), size=min(args.n, len(pool)), replace=False)):
      ensid, chrom, pos = pool[i]
      ref = int(windows[ensid][2][pos - windows[ensid][1]])
      alt = int(rng.choice([b for b in range(4) if b != ref]))
      chosen.append(var.Variant(0, chrom, pos + 1, f"{group}:{ensid}:{k}", "ACGT"[ref],
                                "ACGT"[alt]))
    print(f"{group}: {min(args.n, len(pool))} SNVs of {len(pool)} candidate bases")
  var.write_vcf(args.out, chosen, io.read_chrom_lengths(args.data))
  print(f"wrote {args.out}")
  return 0


def bootstrap(values: Float[np.ndarray, "N"], rng: np.random.Generator, reps: int = 10_000
              ) -> tuple[float, float]:
  means = values[rng.integers(0, len(values), (reps, len(values)))].mean(axis=1)
  return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarize(args) -> int:
  rng = np.random.default_rng(0)
  effects: dict[str, list[float]] = defaultdict(list)
  with open(args.effects, newline="") as f:
    for row in csv.DictReader(f, delimiter="\t"):
      group, ensid, _ = row["id"].split(":")
      if ensid == row["ensid"]:  # the gene whose element holds the variant
        effects[group].append(abs(float(row["delta"])))
  arrays = {g: np.array(effects[g]) for g in GROUPS if effects[g]}
  print("| group | SNVs | mean abs(delta) [95% bootstrap] | median |")
  print("|---|---:|---:|---:|")
  for group, values in arrays.items():
    lo, hi = bootstrap(values, rng)
    print(f"| {group} | {len(values)} | {values.mean():.3g} [{lo:.3g}, {hi:.3g}] | "
          f"{np.median(values):.3g} |")
  from scipy import stats  # noqa: PLC0415
  for other in ("decoy_motif", "background", "promoter"):
    a, b = arrays.get("causal_motif"), arrays.get(other)
    if a is None or b is None:
      continue
    diffs = (a[rng.integers(0, len(a), (10_000, len(a)))].mean(1)
             - b[rng.integers(0, len(b), (10_000, len(b)))].mean(1))
    p = stats.mannwhitneyu(a, b, alternative="greater").pvalue
    print(f"causal_motif - {other}: {a.mean() - b.mean():+.3g} "
          f"[{np.percentile(diffs, 2.5):+.3g}, {np.percentile(diffs, 97.5):+.3g}] (95% "
          f"bootstrap), ratio {a.mean() / b.mean():.2f}; Mann-Whitney one-sided p = {p:.2g}")
  return 0


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="mode", required=True)
  v = sub.add_parser("vcf", help="write the SNVs")
  v.add_argument("--data-root", required=True, type=pathlib.Path, help="`seq2exp synth` out")
  v.add_argument("--data", required=True, type=pathlib.Path, help="its prepared data set")
  v.add_argument("--split", default="test")
  v.add_argument("--n", type=int, default=200, help="SNVs per group")
  v.add_argument("--seed", type=int, default=0)
  v.add_argument("--out", required=True, type=pathlib.Path)
  s = sub.add_parser("summary", help="mean |delta| per group")
  s.add_argument("--effects", required=True, type=pathlib.Path, help="score-variants table")
  args = parser.parse_args(argv)
  return write_variants(args) if args.mode == "vcf" else summarize(args)


if __name__ == "__main__":
  sys.exit(main())
