"""What gradient accumulation saves: XLA's compiled temp memory of the trainer's own train
step (`make_train_step`) for one optimizer batch split into K micro-batches
(`train.grad_accum_steps`), side by side with K = 1, on one CPU device.

    .venv/bin/python benchmarks/grad_accum_memory.py                  # seq2exp_soft, L 16,384, B 8
    .venv/bin/python benchmarks/grad_accum_memory.py --config seq2exp_soft --variant paper \\
        --length 200000 --batch 8 --steps-per-update 1,2,4,8

Compiles only (no step runs), with XLA:CPU's memory-minimising scheduler as the `seq2exp`
commands use it; prints temp memory and its ratio to the first K.
"""

from __future__ import annotations

import argparse
import os


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="seq2exp_soft", help="experiment name")
  parser.add_argument("--variant", default="synthetic")
  parser.add_argument("--length", type=int, default=16_384)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--steps-per-update", default="1,2,4", help="K values, comma-separated")
  args = parser.parse_args()
  os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"

  from seq2exp_jax.commands import runtime  # noqa: PLC0415
  runtime.prefer_memory_saving_cpu_schedule()
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415
  from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: PLC0415

  from data_pipeline.batch import Batch  # noqa: PLC0415
  from data_pipeline.loader import default_mesh  # noqa: PLC0415
  from seq2exp_jax.ablation.driver import resolve_config  # noqa: PLC0415
  from seq2exp_jax.train.optim import learning_rate, make_optimizer  # noqa: PLC0415
  from seq2exp_jax.train.step import init_state, make_train_step, state_sharding  # noqa: PLC0415
  from seq2exp_jax.train.task import build_task  # noqa: PLC0415

  config = resolve_config(args.config, args.variant, 0, None, [])
  mesh = default_mesh()
  rng = np.random.default_rng(0)
  b, length = args.batch, args.length
  host = Batch(dna=np.eye(4, dtype=np.float32)[rng.integers(0, 4, (b, length))],
               signals=rng.gamma(0.5, 2.0, (b, length, 3)).astype(np.float32),
               rna_feat=rng.normal(size=(b, 9)).astype(np.float32),
               blacklist=np.zeros((b, length), bool),
               target=rng.normal(size=(b,)).astype(np.float32))
  batch = jax.device_put(host, NamedSharding(mesh, P("data")))
  task = build_task(config)
  schedule = learning_rate(config.optim, config.train.steps)
  tx = make_optimizer(config.optim, schedule)
  shardings = state_sharding(jax.eval_shape(lambda: init_state(task, tx, batch, 0)), mesh,
                             False)
  state = jax.jit(lambda: init_state(task, tx, batch, 0), out_shardings=shardings)()
  ks = [int(v) for v in args.steps_per_update.split(",")]
  base = None
  print(f"{args.config}:{args.variant}, L {length:,}, batch {b}, one CPU device")
  print(f"{'K':>3} {'micro-batch':>11} {'temp MiB':>10} {f'vs K={ks[0]}':>7}")
  for k in ks:
    step = make_train_step(task, tx, schedule, shardings, mesh, grad_accum_steps=k)
    temp = step.lower(state, batch).compile().memory_analysis().temp_size_in_bytes / 2**20
    base = base or temp
    print(f"{k:>3} {b // k:>11} {temp:>10.1f} {temp / base:>6.2f}x", flush=True)


if __name__ == "__main__":
  main()
