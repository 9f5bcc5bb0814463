"""Examples/s of the full training step of `seq2exp train` (the trainer's own jitted,
donated step: forward, backward, clipping, AdamW with its weight-decay mask, the loss terms
and the non-finite bookkeeping) on random inputs, for several experiment configs side by
side, each in its own subprocess (so one's memory does not count against another).

    .venv/bin/python benchmarks/train_step.py                        # synthetic sizes
    .venv/bin/python benchmarks/train_step.py --paper --length 200000 --batch 1 --steps 1

--paper uses the paper-size config (D=128, 4 + 4 layers, remat) with its dtype
(bfloat16) unless --dtype is given; on CPU use --dtype float32 (XLA:CPU emulates bf16).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

DEFAULT = "seq2exp_soft,caduceus_signals,macs3_mask"


def measure(name: str, variant: str, length: int, batch: int, steps: int,
            dtype: str | None) -> dict:
  import resource  # noqa: PLC0415

  from seq2exp_jax.commands import runtime  # noqa: PLC0415
  runtime.prefer_memory_saving_cpu_schedule()
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415

  from data_pipeline.loader import default_mesh  # noqa: PLC0415
  from seq2exp_jax.train.optim import learning_rate, make_optimizer  # noqa: PLC0415
  from seq2exp_jax.ablation.driver import resolve_config  # noqa: PLC0415
  from seq2exp_jax.train.task import build_task  # noqa: PLC0415
  from seq2exp_jax.train.step import init_state, make_train_step, state_sharding  # noqa

  overrides = [f"train.dtype={dtype}"] if dtype else []
  config = resolve_config(name, variant, 0, None, overrides)
  config.model.args.center_len = min(config.model.args.center_len, length // 2)
  if config.model.args.get("pos_enc"):
    config.model.args.seq_range = length
  mesh = default_mesh()
  rng = np.random.default_rng(0)
  host = {"dna": np.eye(4, dtype=np.float32)[rng.integers(0, 4, (batch, length))],
          "signals": rng.gamma(0.5, 2.0, (batch, length, 3)).astype(np.float32),
          "blacklist": np.zeros((batch, length), bool),
          "includelist": np.ones((batch, length), bool),
          "peaks": rng.random((batch, length)) < 0.03,
          "rna_feat": rng.normal(size=(batch, 9)).astype(np.float32),
          "target": rng.normal(size=(batch,)).astype(np.float32)}
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  batch_arrays = {k: jax.device_put(v, sharding) for k, v in host.items()}
  task = build_task(config)
  schedule = learning_rate(config.optim, config.train.steps)
  tx = make_optimizer(config.optim, schedule)
  shapes = jax.eval_shape(lambda: init_state(task, tx, batch_arrays, 0))
  shardings = state_sharding(shapes, mesh, config.train.shard_params)
  state = jax.jit(lambda: init_state(task, tx, batch_arrays, 0), out_shardings=shardings)()
  step = make_train_step(task, tx, schedule, shardings, mesh)
  t = time.perf_counter()
  state, terms = step(state, batch_arrays)
  jax.block_until_ready(terms["loss"])
  compile_s = time.perf_counter() - t
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    state, terms = step(state, batch_arrays)
    jax.block_until_ready(terms["loss"])
    times.append(time.perf_counter() - t)
  best = min(times)
  return {"config": f"{name}:{variant}", "length": length, "batch": batch,
          "dtype": config.train.dtype, "remat": bool(config.train.remat),
          "seconds_per_step": best, "examples_per_second": batch / best,
          "first_step_seconds": compile_s, "loss": float(terms["loss"]),
          "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
          "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}"}


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--configs", default=DEFAULT)
  parser.add_argument("--paper", action="store_true", help="paper-size configs")
  parser.add_argument("--length", type=int, default=16_384)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--dtype", choices=["float32", "bfloat16"])
  parser.add_argument("--one", help=argparse.SUPPRESS)  # child process
  args = parser.parse_args()
  variant = "paper" if args.paper else "synthetic"
  if args.one:
    print(json.dumps(measure(args.one, variant, args.length, args.batch, args.steps,
                             args.dtype)))
    return 0
  rows = []
  for name in args.configs.split(","):
    cmd = [sys.executable, __file__, "--one", name, "--length", str(args.length), "--batch",
           str(args.batch), "--steps", str(args.steps)] + (["--paper"] if args.paper else []) + (
               ["--dtype", args.dtype] if args.dtype else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
      print(f"{name}: failed\n{proc.stderr[-3000:]}", file=sys.stderr)
      continue
    rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(json.dumps(rows[-1]), file=sys.stderr)
  if not rows:
    return 1
  print(f"\nfull train step, L={args.length:,}, batch {args.batch}, {rows[0]['devices']}")
  print(f"{'config':<32} {'dtype':>9} {'s/step':>8} {'examples/s':>11} {'peak GiB':>9} "
        f"{'vs first':>9}")
  for r in rows:
    print(f"{r['config']:<32} {r['dtype']:>9} {r['seconds_per_step']:>8.2f} "
          f"{r['examples_per_second']:>11.2f} {r['peak_gib']:>9.2f} "
          f"{r['examples_per_second'] / rows[0]['examples_per_second']:>8.2f}x")
  return 0


if __name__ == "__main__":
  sys.exit(main())
