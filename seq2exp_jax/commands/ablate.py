"""`seq2exp ablate --configs A,B,... --seeds 5 --workdir DIR`: every config for every seed
(DIR/<config>/seed_<k>; resumable, finished runs skipped), each evaluated on the test split
with its best-on-validation checkpoint, then DIR/results.md: mean ± std of MSE, MAE, Pearson
and Spearman in the shape of the paper's Table 1, plus mask AUPRC against the planted
elements and the mask ratio on synthetic data.

Configs are names under experiments/ (seq2exp_soft, macs3_mask, ...) or paths, each with an
optional :variant; --variant sets it for all. seq2exp_retrain_top10 reads the same seed's
seq2exp_soft run unless mask.generator_workdir is given, so list seq2exp_soft first.
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
  parser.add_argument("--variant", choices=["paper", "smoke", "synthetic"])
  parser.add_argument("--split", default="test", choices=["valid", "test"])
  parser.epilog = "--config.<field>=<value> applies to every run."


def run(args) -> int:
  from seq2exp_jax.ablation.driver import ablate  # noqa: PLC0415
  _, text = ablate(args.configs, args.seeds, args.workdir, args.variant, args.config_overrides,
                   args.split)
  print("\n" + text + f"\nwritten to {args.workdir / 'results.md'}")
  return 0
