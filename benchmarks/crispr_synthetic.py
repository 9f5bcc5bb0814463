"""A CRISPRi benchmark of a synthetic genome, in ENCODE EPCrisprBenchmark's exact columns,
and the in-silico deletion effects of a links table by the planted truth.

Writes --out from `seq2exp synth`'s truth/elements.tsv (every planted element with its own
gene: Regulated = causal; seq2exp_jax/outputs/crispr_benchmark.py, `synthetic_rows`), for
the genes of --links when given, so the benchmark covers the split the links were made on:

  .venv/bin/python benchmarks/crispr_synthetic.py --data-root SYNTH --links links.tsv \
      --out EPCrisprBenchmark_synthetic.tsv
  .venv/bin/seq2exp evaluate-links --links links.tsv --benchmark EPCrisprBenchmark_synthetic.tsv

With --links it also prints the mean deletion_effect and keep_alone_effect of the links'
causal and decoy elements (class from the truth BEDs), each with a 95% t interval.
"""

from __future__ import annotations

import argparse
import csv
import pathlib
import sys

import numpy as np
from scipy import stats

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from seq2exp_jax.outputs import crispr_benchmark as bench  # noqa: E402

DECOYS = ("dead", "split", "insulated", "decoy")


def interval(values: np.ndarray) -> str:
  """'mean [lo, hi] (n)' with the 95% t interval of the mean."""
  n = len(values)
  if n < 2:
    return f"{values.mean() if n else float('nan'):.4g} (n={n})"
  half = stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n)
  return f"{values.mean():.4g} [{values.mean() - half:.4g}, {values.mean() + half:.4g}] (n={n})"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data-root", required=True, type=pathlib.Path,
                      help="a `seq2exp synth` output (its truth/ and gene table)")
  parser.add_argument("--out", required=True, type=pathlib.Path)
  parser.add_argument("--links", type=pathlib.Path, help="a `seq2exp links` table")
  parser.add_argument("--cell-type", default="K562")
  args = parser.parse_args(argv)
  genes, table = None, []
  if args.links:
    with open(args.links, newline="") as f:
      table = list(csv.DictReader(f, delimiter="\t"))
    genes = {row["TargetGeneEnsembl_ID"] for row in table}
  rows = bench.synthetic_rows(args.data_root, args.cell_type, genes)
  bench.write_benchmark(args.out, rows)
  positives = sum(r["Regulated"] == "TRUE" for r in rows)
  print(f"wrote {args.out}: {len(rows)} pairs, {positives} Regulated "
        f"(prevalence {positives / max(len(rows), 1):.3f})")
  for column in ("deletion_effect", "keep_alone_effect") if table else ():
    for name, kinds in (("causal", ("causal",)), ("decoy", DECOYS)):
      values = np.array([float(r[column]) for r in table if r["class"] in kinds
                         and r[column] != "NA"])
      print(f"{column} of {name} elements: {interval(values)}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
