"""`seq2exp eval --workdir DIR --split test`: metrics of a trained run's best checkpoint
(MSE, MAE, Pearson, Spearman; mask AUPRC and ratio on synthetic data), printed and written
to DIR/eval_<split>.json (every gene's prediction to DIR/<split>_predictions.csv).

`seq2exp eval --params PARAMS --config experiments/X.py[:variant] --data TFDS_DIR`: the
same for params made elsewhere (seq2exp_jax/commands/params_source.py); the metrics are
printed, and written only to `--out FILE` (nothing is written beside the params).
"""

from __future__ import annotations

import argparse
import json
import pathlib

from data_pipeline.errors import ConfigError, OutputExistsError
from seq2exp_jax.commands import arguments, params_source

ACCEPTS_CONFIG_OVERRIDES = True  # with --params


def add_arguments(parser: argparse.ArgumentParser) -> None:
  params_source.add_arguments(parser)
  parser.add_argument("--split", default="test", choices=["train", "valid", "test"])
  parser.add_argument("--data", help="prepared data set dir (default: the config's data.dir)")
  parser.add_argument("--batch-size", type=arguments.positive_int,
                      help="evaluation batch (default: the config's train.eval_batch_size)")
  parser.add_argument("--out", type=pathlib.Path,
                      help="with --params: a JSON file for the metrics (else they are only "
                           "printed); --workdir's go to DIR/eval_<split>.json")


def check_out(path: pathlib.Path | None) -> None:
  """--out may be new or an earlier `eval` result (replaced); anything else is refused."""
  if path is None or not path.exists():
    return
  try:
    earlier = json.loads(path.read_text()) if path.is_file() else None
  except (OSError, UnicodeDecodeError, json.JSONDecodeError):
    earlier = None
  if not (isinstance(earlier, dict) and {"split", "mse"} <= set(earlier)):
    raise OutputExistsError(f"--out {path}: exists and is not an earlier `seq2exp eval` "
                            "result; choose a new file")


def run(args) -> int:
  from data_pipeline import io  # noqa: PLC0415
  from seq2exp_jax.ablation.driver import (eval_file, evaluate_params,  # noqa: PLC0415
                                           evaluate_workdir)

  if args.workdir is not None:
    params_source.check_workdir_args(args, "--out" if args.out else None)
    which = args.which or "best"
    result = evaluate_workdir(args.workdir, args.split, args.data, which, args.batch_size)
    label, out = (f"{args.workdir} ({which} checkpoint, step {result['step']})",
                  eval_file(args.workdir, args.split))
  else:
    check_out(args.out)
    model = params_source.load(args, data_dir=args.data)
    data = args.data or model.config.data.dir
    if not data:
      raise ConfigError(f"{args.config}: data.dir is empty; pass --data TFDS_DIR")
    result = dict(evaluate_params(model.config, model.params, args.split, data,
                                  args.batch_size), **model.source)
    label, out = model.label, args.out
    if out is not None:
      io.write_json(out, result)
  print(f"{label} on {args.split}, {int(result['n'])} genes:")
  for key in ("mse", "mae", "pearson", "spearman", "auprc", "mask_ratio"):
    if key in result:
      print(f"  {key:<11} {result[key]:.4f}")
  if out is not None:
    print(f"written to {out}")
  return 0
