"""`--distributed`: join a multi-process JAX run before anything touches a device.

`jax.distributed.initialize` finds the coordinator, the process count and this process's
index by itself on TPU pods, SLURM and Open MPI. Anywhere else (several processes on one
machine, a hand-rolled cluster) they come from `--coordinator`, `--num-processes` and
`--process-id`, or from the environment variables JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES
and JAX_PROCESS_ID. On CPU the collectives between processes go through Gloo.
"""

from __future__ import annotations

import argparse
import os

from data_pipeline.errors import InputError, RunFailedError
from seq2exp_jax.commands import arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
  group = parser.add_argument_group("multi-process runs")
  group.add_argument("--distributed", action="store_true",
                     help="call jax.distributed.initialize() first (multi-host runs)")
  group.add_argument("--coordinator", help="host:port of process 0 (default: "
                     "JAX_COORDINATOR_ADDRESS, else detected on TPU / SLURM / MPI)")
  group.add_argument("--num-processes", type=arguments.positive_int,
                     help="default: JAX_NUM_PROCESSES, else detected")
  group.add_argument("--process-id", type=arguments.non_negative_int,
                     help="default: JAX_PROCESS_ID, else detected")


def _from_env(name: str) -> int | None:
  text = os.environ.get(name)
  if text is None:
    return None
  if not text.strip().isdigit():
    raise InputError(f"environment variable {name}={text!r}: expected a non-negative integer")
  return int(text)


def initialize(args: argparse.Namespace) -> None:
  """Joins the run when `--distributed` is given; a failure to connect is one line."""
  if not args.distributed:
    return
  import jax  # noqa: PLC0415
  num = args.num_processes if args.num_processes is not None else _from_env(
      "JAX_NUM_PROCESSES")
  pid = args.process_id if args.process_id is not None else _from_env("JAX_PROCESS_ID")
  if num is not None and pid is not None and not pid < num:
    raise InputError(f"--process-id {pid}: expected < --num-processes {num}")
  try:
    jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=num,
                               process_id=pid)
  except (ValueError, RuntimeError) as e:
    raise RunFailedError(f"--distributed: cannot join the run ({' '.join(str(e).split())})"
                         ) from e
