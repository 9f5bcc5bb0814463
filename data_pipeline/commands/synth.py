"""`seq2exp synth`: write a synthetic genome with known causal elements in the GeneExp layout.

  seq2exp synth --out /tmp/synth --preset tiny --seed 0

writes the docs/data.md layout for one cell type plus truth/ (see data_pipeline/synth/).
"""

from __future__ import annotations

import argparse
import pathlib
import time

from data_pipeline.layout import CELL_FILES
from data_pipeline.synth import presets


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--out", type=pathlib.Path, required=True,
                      help="output data root (must not exist unless --overwrite)")
  parser.add_argument("--preset", default="tiny", choices=list(presets.PRESETS),
                      help="size (default tiny)")
  parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
  parser.add_argument("--cell-type", default="K562", choices=sorted(CELL_FILES),
                      help="cell type whose file names and label column are written")
  parser.add_argument("--genes", type=int, default=None, help="override the preset's gene count")
  parser.add_argument("--window", type=int, default=None,
                      help="override the preset's window length L in bp (even)")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace an existing --out (only once the new data set is complete)")
  parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
  # Imported here so `--help` stays fast.
  from data_pipeline.synth import build

  t0 = time.perf_counter()
  preset = presets.resolve(args.preset, args.genes, args.window)
  summary = build.build(args.out, preset, args.seed, cell_type=args.cell_type,
                        overwrite=args.overwrite, progress=not args.quiet,
                        preset_name=args.preset)
  print(f"wrote {summary.out}: {summary.n_genes} genes, window {preset.window} bp, "
        f"{summary.genome_bp:,} bp genome, elements {summary.n_elements}, noise sigma "
        f"{summary.noise_sigma:.3f}, noise-ceiling Pearson {summary.noise_ceiling_pearson:.3f} "
        f"({time.perf_counter() - t0:.1f} s)")
  return 0
