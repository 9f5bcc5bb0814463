"""`seq2exp eval --workdir DIR --split test`: metrics of a trained run's best checkpoint
(MSE, MAE, Pearson, Spearman; mask AUPRC and ratio on synthetic data), printed and written
to DIR/eval_<split>.json."""

from __future__ import annotations

import argparse
import pathlib

from seq2exp_jax.commands import arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--workdir", required=True, type=arguments.existing_dir)
  parser.add_argument("--split", default="test", choices=["train", "valid", "test"])
  parser.add_argument("--data", help="prepared data set dir (default: the run's data.dir)")
  parser.add_argument("--which", default="best", choices=["best", "latest"],
                      help="checkpoint: best on validation MSE, or the latest")
  parser.add_argument("--batch-size", type=arguments.positive_int,
                      help="evaluation batch (default: the run's)")


def run(args) -> int:
  from seq2exp_jax.ablation.driver import evaluate_workdir  # noqa: PLC0415
  result = evaluate_workdir(args.workdir, args.split, args.data, args.which, args.batch_size)
  print(f"{args.workdir} ({args.which} checkpoint, step {result['step']}) on {args.split}, "
        f"{int(result['n'])} genes:")
  for key in ("mse", "mae", "pearson", "spearman", "auprc", "mask_ratio"):
    if key in result:
      print(f"  {key:<11} {result[key]:.4f}")
  print(f"written to {args.workdir / f'eval_{args.split}.json'}")
  return 0
