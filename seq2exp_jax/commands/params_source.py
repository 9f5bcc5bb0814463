"""Where `eval`, `predict` and `export` read a model from, and what `train --init-from`
starts from:

  --workdir DIR                   a `seq2exp train` run: its own config and its best (or
                                  `--which latest`) checkpoint
  --params PARAMS --config X.py[:variant] [--config.a.b=v ...]
                                  params made elsewhere, under an experiment config:
      PARAMS.msgpack              a Flax msgpack (what `seq2exp convert-torch` writes)
      CKPT.ckpt, CKPT.npz         a checkpoint of the original PyTorch code (a Lightning
                                  .ckpt needs torch; an .npz holds param/<name> arrays),
                                  with `--torch-config CONFIG.json`, the original's model
                                  config (the `--config` of convert-torch)
      DIR                         another `seq2exp train` workdir: its best params

Params that do not fit the config's model are refused in one line naming the first paths
that differ (seq2exp_jax/train/init_params.py, `check_fits`).
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
from typing import Any

from data_pipeline.errors import DataSetError, InputError
from seq2exp_jax.commands import arguments

TORCH_SUFFIXES = (".ckpt", ".pt", ".pth", ".npz")
PARAMS_HELP = ("a Flax msgpack (seq2exp convert-torch), a checkpoint of the original code "
               "(.ckpt or .npz of param/<name>, with --torch-config) or a `seq2exp train` "
               "workdir (its best params)")


def add_torch_config(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--torch-config", type=pathlib.Path, metavar="CONFIG.json",
                      help="the original's model config JSON (module + caduceus_config, as "
                           "for convert-torch --config); needed when the params are a "
                           ".ckpt or .npz of the original code")


def add_arguments(parser: argparse.ArgumentParser) -> None:
  """--workdir, or --params with --config (and --torch-config); --which."""
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--workdir", type=arguments.existing_dir,
                      help="a `seq2exp train` workdir (its config and checkpoint)")
  source.add_argument("--params", type=pathlib.Path, metavar="PARAMS",
                      help=PARAMS_HELP + "; with --config")
  parser.add_argument("--config", help="with --params: the experiment they are for, "
                      "experiments/<name>.py[:variant] (--config.<field>=<value> overrides)")
  add_torch_config(parser)
  parser.add_argument("--which", choices=["best", "latest"],
                      help="--workdir's checkpoint: best on validation MSE (the default), or "
                           "the latest")
  parser.epilog = "With --params, any config field can be set with --config.<field>=<value>."


def add_data_arguments(parser: argparse.ArgumentParser, out_help: str | None = None) -> None:
  """The arguments of a command that runs a trained model over a prepared data set's split
  (predict, attribute, links): the params' source, --data, --split, --out."""
  add_arguments(parser)
  parser.add_argument("--data", required=True, type=arguments.existing_dir,
                      help="prepared data set dir")
  parser.add_argument("--split", default="test", choices=["train", "valid", "test"])
  parser.add_argument("--out", required=True, type=pathlib.Path, help=out_help)


def read(path: pathlib.Path, torch_config: pathlib.Path | None):
  """`init_params.LoadedParams` of PARAMS (not yet checked against a config)."""
  from seq2exp_jax.commands.convert_torch import convert_checkpoint  # noqa: PLC0415
  from seq2exp_jax.train import init_params  # noqa: PLC0415

  if path.is_dir():
    return init_params.from_workdir(path)
  if path.suffix in TORCH_SUFFIXES:
    if torch_config is None:
      raise InputError(f"{path}: a checkpoint of the original code needs --torch-config "
                       "CONFIG.json, the original's model config (as for convert-torch)")
    model, params = convert_checkpoint(path, torch_config)
    return init_params.LoadedParams(params, {"path": str(path), "kind": "torch",
                                             "torch_config": str(torch_config)},
                                    reference=model.module)
  if torch_config is not None:
    raise InputError(f"--torch-config {torch_config}: only for a checkpoint of the original "
                     f"code ({', '.join(TORCH_SUFFIXES)}), not {path}")
  return init_params.read_msgpack(path)


def stored_window(data_dir: str, fix: str) -> int:
  """The window the prepared data set at `data_dir` stores; `fix` says what to pass
  instead when it cannot be read."""
  import tensorflow_datasets as tfds  # noqa: PLC0415
  try:
    info = tfds.builder_from_directory(data_dir).info
  except Exception as e:  # noqa: BLE001  (any reason the data set cannot be opened)
    raise DataSetError(f"cannot read the window from the data set {data_dir!r} ({e}); pass "
                       f"{fix}") from e
  return int(info.features["dna"].shape[0])


def check_workdir_args(args, *others: str | None) -> None:
  """Refuses, with --workdir, the options that go with --params (and `others` given)."""
  given = [name for name, value in (("--config", args.config),
                                    ("--config.<field>=<value>", args.config_overrides),
                                    ("--torch-config", args.torch_config)) if value]
  given += [name for name in others if name]
  if given:
    raise InputError(f"{', '.join(given)}: go with --params; --workdir {args.workdir} runs "
                     "with its own config and checkpoint")


@dataclasses.dataclass(frozen=True)
class Model:
  """What a command runs: a config, its params, where they came from (`source`, recorded
  in the command's outputs) and how to name them in a message (`label`)."""

  config: Any
  params: Any
  source: dict[str, Any]
  label: str


def load(args, data_dir: str | None = None, window: int | None = None) -> Model:
  """The model of `args` (see add_arguments). With --params, `window` (else data.window,
  else the window stored in `data_dir` or data.dir) is the one their fit is checked for."""
  from seq2exp_jax.config import loader as configs  # noqa: PLC0415
  from seq2exp_jax.config.checks import check_config  # noqa: PLC0415
  from seq2exp_jax.train import checkpoint, init_params  # noqa: PLC0415
  from seq2exp_jax.train.task import build_task  # noqa: PLC0415
  from seq2exp_jax.train.trainer import load_generator  # noqa: PLC0415

  if args.workdir is not None:
    check_workdir_args(args)
    which = args.which or "best"
    config, params, step = checkpoint.load_run(args.workdir, which)
    return Model(config, params, {"step": step, "checkpoint": which},
                 f"{args.workdir} ({which} checkpoint, step {step})")
  if not args.config:
    raise InputError(f"--params {args.params}: needs --config experiments/<name>.py[:variant]"
                     ", the experiment config the params are for")
  if args.which:
    raise InputError(f"--which {args.which}: picks a --workdir's checkpoint, not --params")
  config = check_config(configs.apply_overrides(configs.load_config(args.config),
                                                args.config_overrides))
  task = build_task(config, load_generator)
  loaded = read(args.params, args.torch_config)
  data = data_dir or config.data.dir
  window = window or config.data.window or stored_window(
      data, "--config.data.window" if data else "--data")
  init_params.check_fits(loaded, task, int(window))
  return Model(config, loaded.params, {"params": loaded.source},
               f"{args.params} ({config.experiment}:{config.variant})")
