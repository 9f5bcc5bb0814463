"""`seq2exp export --workdir DIR --out FILE` (or `--params PARAMS --config
experiments/X.py[:variant]` instead of --workdir, see seq2exp_jax/commands/params_source.py):
the predictor as a `jax.export` artifact (StableHLO with a symbolic batch dimension) plus
its params, in one file that `seq2exp_jax/outputs/serving.py` runs without the model code:

    python seq2exp_jax/outputs/serving.py FILE inputs.npz outputs.npz

Inputs: dna float32 (B, L, 4) one-hot, signals float32 (B, L, 3), blacklist bool (B, L),
rna_feat float32 (B, 9) (and peaks bool (B, L) for the MACS3-mask model); outputs:
prediction (B,) and, for Seq2Exp models, mask (B, L). A TF SavedModel (jax2tf) is not
written: TensorFlow is not a dependency of this project.
"""

from __future__ import annotations

import argparse
import pathlib

from seq2exp_jax.commands import arguments, params_source

ACCEPTS_CONFIG_OVERRIDES = True  # with --params


def add_arguments(parser: argparse.ArgumentParser) -> None:
  params_source.add_arguments(parser)
  parser.add_argument("--out", required=True, type=pathlib.Path)
  parser.add_argument("--window", type=arguments.positive_int,
                      help="window L of the inputs (default: the run's data.window, else the "
                           "stored window of its data set)")
  parser.add_argument("--platforms", default=None,
                      help="comma-separated, e.g. cpu,cuda (default: this machine's)")


def window_of(config, window: int | None) -> int:
  if window:
    return window
  if config.data.window:
    return int(config.data.window)
  return params_source.stored_window(config.data.dir, "--window")


def run(args) -> int:
  import jax  # noqa: PLC0415

  from data_pipeline.batch import Batch  # noqa: PLC0415
  from seq2exp_jax.outputs.export import (check_out_path, check_platforms,  # noqa: PLC0415
                                          export_predictor)
  from seq2exp_jax.train.task import build_task  # noqa: PLC0415
  from seq2exp_jax.train.trainer import load_generator  # noqa: PLC0415

  # The cheap checks first: a bad --out or --platforms fails before the model is loaded.
  platforms = check_platforms(tuple(args.platforms.split(",")) if args.platforms else None)
  check_out_path(args.out)
  model = params_source.load(args, window=args.window)
  config, params = model.config, model.params
  config.train.remat = False  # inference only
  task = build_task(config, load_generator)
  length = window_of(config, args.window)
  example = Batch.zeros(1, length, elements=True)
  inputs = {"dna": example.dna, "signals": example.signals, "blacklist": example.blacklist,
            "rna_feat": example.rna_feat}
  inputs.update({name: getattr(example, name) for name in task.model.extra_inputs
                 if getattr(example, name) is not None})  # EPInformer's candidate elements
  if config.mask.source == "peaks":
    inputs["peaks"] = example.blacklist  # bool (1, L)
  # The exported function's params: the trained ones and, for a fixed mask read from a
  # trained generator, that generator's (arguments of the artifact, listed in its manifest).
  variables = {"params": params} if task.frozen is None else {"params": params,
                                                              "frozen": task.frozen}
  has_mask = jax.eval_shape(lambda: task.apply(params, Batch(**inputs))).mask is not None
  outputs = ("prediction", "mask") if has_mask else ("prediction",)

  def apply_fn(v, arrays):
    out = task.apply(v["params"], Batch(**arrays), frozen=v.get("frozen"))
    return {"prediction": out.prediction, **({"mask": out.mask} if has_mask else {})}

  path = export_predictor(apply_fn, variables, inputs, args.out, outputs=outputs,
                          platforms=platforms, metadata={
                              "experiment": config.experiment, "variant": config.variant,
                              **model.source, "window": length, "config": config.to_dict()})
  origin = f"step {model.source['step']}" if args.workdir else str(args.params)
  print(f"exported {config.experiment} ({origin}, window {length:,}) to {path} "
        f"({path.stat().st_size / 2**20:.1f} MiB); run it with "
        "seq2exp_jax/outputs/serving.py")
  return 0
