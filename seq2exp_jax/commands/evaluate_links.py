"""`seq2exp evaluate-links --links LINKS --benchmark FILE [--out DIR] [--peaks NARROWPEAK]`:
a links table (`seq2exp links`) scored against a CRISPRi enhancer-gene benchmark, the ENCODE
EPCrisprBenchmark TSV or Fulco et al. 2019's Supplementary Table 6a saved as TSV
(seq2exp_jax/outputs/crispr_benchmark.py): AUPRC and precision at 70% recall of our Score,
the ABC score, activity x contact, the in-silico deletion, the MACS3 peaks and distance
(seq2exp_jax/outputs/link_metrics.py says how pairs are matched and what counts as 0).

Writes DIR (default: beside LINKS, `<links name>.eval/`): metrics.tsv, pairs.tsv (every
evaluated pair with each predictor's value) and precision_recall.png.
"""

from __future__ import annotations

import argparse
import pathlib


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--links", required=True, type=pathlib.Path,
                      help="a `seq2exp links` table (plain or .gz)")
  parser.add_argument("--benchmark", required=True, type=pathlib.Path,
                      help="EPCrisprBenchmark TSV (.gz) or Fulco 2019 Table S6a as TSV")
  parser.add_argument("--out", type=pathlib.Path, help="output directory")
  parser.add_argument("--peaks", type=pathlib.Path, metavar="NARROWPEAK",
                      help="MACS3 DNase peaks for the MACS3 baseline, e.g. the prepared data "
                           "set's macs3_dnase_peaks.narrowPeak (default: the links' "
                           "MACS3_overlap)")
  parser.add_argument("--chrom-sizes", type=pathlib.Path,
                      help="a data set, chr_length.json or .chrom.sizes: links and benchmark "
                           "rows on other chromosomes are refused")


def run(args) -> int:
  from data_pipeline import io  # noqa: PLC0415
  from data_pipeline.errors import InputError  # noqa: PLC0415
  from seq2exp_jax.outputs import link_metrics  # noqa: PLC0415
  from seq2exp_jax.outputs.crispr_benchmark import read_benchmark  # noqa: PLC0415

  sizes = io.read_chrom_lengths(args.chrom_sizes) if args.chrom_sizes else None
  links = link_metrics.read_links(args.links, sizes)
  layout, pairs, invalid = read_benchmark(args.benchmark, sizes)
  peaks = link_metrics.read_peaks(args.peaks) if args.peaks else None
  matched = link_metrics.match(pairs, links, peaks)
  if not matched.pairs:
    link_genes = sorted({g for link in links for g in link.genes})[:3]
    raise InputError(f"--benchmark {args.benchmark}: none of its {len(pairs)} valid pairs is "
                     f"of a gene in --links {args.links} (genes like {link_genes}, benchmark "
                     f"{sorted({p.gene for p in pairs})[:3]}); name genes alike, e.g. "
                     "`seq2exp links --gene-names GeneList.txt` for symbols")
  rows = link_metrics.metrics(matched)
  out = args.out or args.links.parent / f"{args.links.name.split('.')[0]}.eval"
  title = f"{args.benchmark.name} ({layout}): {rows[0]['pairs']} pairs"
  written = link_metrics.write_evaluation(out, matched, rows, title)
  r = rows[0]
  print(f"{layout} {args.benchmark}: {r['pairs']} pairs ({r['positives']} positive, "
        f"prevalence {r['prevalence']:.3f}), {r['matched_pairs']} overlap a link; left out: "
        f"{invalid} not ValidConnection, {matched.uncovered} of genes without links")
  for row in rows:
    print(f"  {row['predictor']:<20} AUPRC {row['AUPRC']:.4f}   precision at 70% recall "
          f"{row['precision_at_70pct_recall']:.4f}")
  print(f"wrote to {out}: " + ", ".join(written))
  return 0
