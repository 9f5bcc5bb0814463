"""`seq2exp train --config experiments/X.py[:variant] --workdir DIR [--config.a.b=v ...]`.

Trains on every device of every process: `--distributed` joins a multi-process run first
(seq2exp_jax/commands/distributed.py: detected on TPU pods, SLURM and Open MPI, else from
--coordinator / --num-processes / --process-id or JAX_COORDINATOR_ADDRESS /
JAX_NUM_PROCESSES / JAX_PROCESS_ID). Only process 0 writes config.json and the metrics;
every process writes its shards of each checkpoint. Re-running the same
command resumes from the workdir's newest checkpoint that restores; one that cannot be
restored is moved to <workdir>/unreadable_checkpoints/ (never deleted), and when none can,
training from step 0 needs `--restart`.

`--init-from PARAMS` fine-tunes: the run starts at step 0 from these params (with a fresh
optimizer state) instead of a random init: a Flax msgpack (`seq2exp convert-torch`), a
checkpoint of the original code (.ckpt or .npz, with `--torch-config CONFIG.json`, the
original's model config) or another workdir (its best params); see
seq2exp_jax/commands/params_source.py. They must fit the config's model. Where they came
from is written to <workdir>/init.json. A workdir that already has a checkpoint resumes
from it: resuming wins and --init-from is not read.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from seq2exp_jax.commands import distributed, params_source

ACCEPTS_CONFIG_OVERRIDES = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--config", required=True,
                      help="experiments/<name>.py[:paper|smoke|synthetic]")
  parser.add_argument("--workdir", required=True, type=pathlib.Path)
  parser.add_argument("--restart", action="store_true",
                      help="train from step 0 when none of the workdir's checkpoints can be "
                           "restored (they stay in <workdir>/unreadable_checkpoints/)")
  parser.add_argument("--init-from", type=pathlib.Path, metavar="PARAMS",
                      help="fine-tune: start at step 0 from these params (fresh optimizer "
                           "state) instead of a random init: " + params_source.PARAMS_HELP
                           + ". Resuming wins: a workdir with a checkpoint resumes from it "
                           "and does not read PARAMS")
  params_source.add_torch_config(parser)
  distributed.add_arguments(parser)
  parser.epilog = "Any config field can be set with --config.<field>=<value>."


def load(spec: str, overrides: list[str]):
  from seq2exp_jax.config import loader as configs  # noqa: PLC0415
  return configs.apply_overrides(configs.load_config(spec), overrides)


def run(args) -> int:
  distributed.initialize(args)  # before anything touches a device
  import jax  # noqa: PLC0415
  from seq2exp_jax.train.trainer import train_and_evaluate  # noqa: PLC0415
  from data_pipeline.errors import InputError  # noqa: PLC0415
  from seq2exp_jax.train import checkpoint  # noqa: PLC0415
  config = load(args.config, args.config_overrides)
  init = None
  if args.init_from is None and args.torch_config is not None:
    raise InputError("--torch-config goes with --init-from (the original's checkpoint)")
  if args.init_from is not None and checkpoint.has_checkpoint(args.workdir) \
      and not args.restart:
    if jax.process_index() == 0:
      print(f"{args.workdir} has a checkpoint: resuming from it, --init-from "
            f"{args.init_from} is not used", file=sys.stderr, flush=True)
  elif args.init_from is not None:
    init = params_source.read(args.init_from, args.torch_config)
  result = train_and_evaluate(config, args.workdir, restart=args.restart, init=init)
  if jax.process_index() == 0:
    print(json.dumps({k: result.get(k) for k in ("step", "train", "valid", "best")},
                     indent=1, default=float))
  return 0
