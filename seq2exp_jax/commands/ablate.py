"""`seq2exp ablate --configs A,B,... --seeds 5 --workdir DIR`: every config for every seed
(DIR/<config>/seed_<k>; resumable, finished runs skipped), each evaluated on the test split
with its best-on-validation checkpoint, then DIR/results.md: mean ± std of MSE, MAE, Pearson
and Spearman in the shape of the paper's Table 1, plus mask AUPRC against the planted
elements and the mask ratio on synthetic data.

Configs are names under experiments/ (seq2exp_soft, macs3_mask, ...) or paths, each with an
optional :variant; --variant sets it for all. seq2exp_retrain_top10 reads the same seed's
seq2exp_soft run unless mask.generator_workdir is given, so list seq2exp_soft first.

--folds 1-12 (or 1,3,11) sweeps the leave-chromosome-out folds of the fold CSV: every config
x fold x seed in DIR/<config>/fold_<k>/seed_<s>, each on its fold's data set
(--config.data.dir with {fold}, e.g. tfds/geneexp/k562_16384_fold{fold}/1.0.0; with
--build-from DATA_ROOT the missing ones are built first), and results.md gets the per-fold
rows and the pooled out-of-fold metrics (ablation/folds.py).
"""

from __future__ import annotations

import argparse
import pathlib

from seq2exp_jax.commands import arguments

ACCEPTS_CONFIG_OVERRIDES = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--configs", required=True, type=arguments.comma_list,
                      help="comma-separated experiment names")
  parser.add_argument("--seeds", type=arguments.positive_int, default=5, help="seeds 0 .. N-1")
  parser.add_argument("--workdir", required=True, type=pathlib.Path)
  parser.add_argument("--variant", choices=["paper", "matched", "smoke", "synthetic"])
  parser.add_argument("--split", default="test", choices=["valid", "test"])
  parser.add_argument("--folds", type=arguments.fold_list,
                      help="leave-chromosome-out folds to sweep, e.g. 1-12 or 1,3,11 "
                           "(config.data.dir must then contain {fold})")
  parser.add_argument("--build-from", type=arguments.existing_dir, metavar="DATA_ROOT",
                      help="with --folds: build each fold's missing data set from this "
                           "GeneExp-layout root")
  parser.epilog = "--config.<field>=<value> applies to every run."


def run(args) -> int:
  from data_pipeline.errors import InputError  # noqa: PLC0415
  from seq2exp_jax.ablation.driver import ablate  # noqa: PLC0415
  from seq2exp_jax.ablation.folds import ablate_folds  # noqa: PLC0415
  if args.folds:
    _, text = ablate_folds(args.configs, args.seeds, args.folds, args.workdir, args.variant,
                           args.config_overrides, args.split, args.build_from)
  elif args.build_from:
    raise InputError("--build-from builds the data sets of --folds; give --folds too")
  else:
    _, text = ablate(args.configs, args.seeds, args.workdir, args.variant,
                     args.config_overrides, args.split)
  print("\n" + text + f"\nwritten to {args.workdir / 'results.md'}")
  return 0
