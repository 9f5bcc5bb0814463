"""`seq2exp train --config experiments/X.py[:variant] --workdir DIR [--config.a.b=v ...]`.

Trains on every device of every process: `--distributed` joins a multi-process run first
(seq2exp_jax/commands/distributed.py: detected on TPU pods, SLURM and Open MPI, else from
--coordinator / --num-processes / --process-id or JAX_COORDINATOR_ADDRESS /
JAX_NUM_PROCESSES / JAX_PROCESS_ID). Only process 0 writes config.json and the metrics;
every process writes its shards of each checkpoint. Re-running the same
command resumes from the workdir's newest checkpoint that restores; one that cannot be
restored is moved to <workdir>/unreadable_checkpoints/ (never deleted), and when none can,
training from step 0 needs `--restart`.
"""

from __future__ import annotations

import argparse
import json
import pathlib

from seq2exp_jax.commands import distributed

ACCEPTS_CONFIG_OVERRIDES = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--config", required=True,
                      help="experiments/<name>.py[:paper|smoke|synthetic]")
  parser.add_argument("--workdir", required=True, type=pathlib.Path)
  parser.add_argument("--restart", action="store_true",
                      help="train from step 0 when none of the workdir's checkpoints can be "
                           "restored (they stay in <workdir>/unreadable_checkpoints/)")
  distributed.add_arguments(parser)
  parser.epilog = "Any config field can be set with --config.<field>=<value>."


def load(spec: str, overrides: list[str]):
  from seq2exp_jax.config import loader as configs  # noqa: PLC0415
  return configs.apply_overrides(configs.load_config(spec), overrides)


def run(args) -> int:
  distributed.initialize(args)  # before anything touches a device
  import jax  # noqa: PLC0415
  from seq2exp_jax.train.trainer import train_and_evaluate  # noqa: PLC0415
  config = load(args.config, args.config_overrides)
  result = train_and_evaluate(config, args.workdir, restart=args.restart)
  if jax.process_index() == 0:
    print(json.dumps({k: result.get(k) for k in ("step", "train", "valid", "best")},
                     indent=1, default=float))
  return 0
