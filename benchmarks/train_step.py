"""The full training step of `seq2exp train` (the trainer's own state and jitted, donated
step: forward, backward, clipping, AdamW with its weight-decay mask, the loss terms and the
non-finite bookkeeping) on random inputs: seconds per step, examples/s, XLA's compiled temp
memory and the process's peak memory, side by side for several configs or window lengths,
each in its own subprocess (so one's memory does not count against another).

    .venv/bin/python benchmarks/train_step.py                       # synthetic sizes, L 16,384
    .venv/bin/python benchmarks/train_step.py --paper --configs seq2exp_soft \\
        --lengths 4096,8192,16384 --batch 1 --dtype float32          # vs the original
    .venv/bin/python benchmarks/train_step.py --paper --configs seq2exp_soft \\
        --lengths 200000 --batch 1 --steps 1 --dtype float32

--paper uses the paper-size config (D=128, 4 + 4 layers, remat) with its dtype (bfloat16)
unless --dtype is given; on CPU use --dtype float32 (XLA:CPU emulates bf16). XLA:CPU uses
its memory-minimising scheduler, as the `seq2exp` commands do
(seq2exp_jax/commands/runtime.py). At paper size the original PyTorch code's numbers,
measured on the same 2-core machine, print alongside: 41.8 s / 5.1 GiB per step at 4,096,
112.6 s / 9.7 GiB at 8,192; 16,384 did not fit in 24 GiB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

DEFAULT = "seq2exp_soft,caduceus_signals,macs3_mask"
ORIGINAL = {4096: (41.8, 5.1), 8192: (112.6, 9.7)}  # s/step, GiB (PyTorch, this machine)


class ChildFailed(Exception):
  """A benchmark child exited non-zero or printed nothing: its exit code and stderr's tail."""

  def __init__(self, returncode: int, stderr: str):
    super().__init__(f"exit {returncode}")
    self.returncode, self.stderr = returncode, stderr


def run_child(script: str, argv: list[str], env: dict | None = None,
              timeout: float | None = None):
  """`python script *argv` in its own process (so one measurement's memory does not count
  against another's): the JSON of its last stdout line. ChildFailed if it fails;
  subprocess.TimeoutExpired past `timeout` seconds."""
  proc = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True,
                        env=env, timeout=timeout)
  lines = proc.stdout.strip().splitlines()
  if proc.returncode or not lines:
    raise ChildFailed(proc.returncode, proc.stderr[-3000:])
  return json.loads(lines[-1])


def measure(name: str, variant: str, length: int, batch: int, steps: int,
            dtype: str | None, remat: bool | None, extra_overrides: tuple[str, ...] = ()
            ) -> dict:
  """One config's step; `extra_overrides`: more `a.b=value` fields (benchmarks/gpu.py)."""
  import resource  # noqa: PLC0415

  from seq2exp_jax.commands import runtime  # noqa: PLC0415
  runtime.prefer_memory_saving_cpu_schedule()
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415

  from data_pipeline.batch import NUM_RNA_FEATURES, NUM_SIGNALS, Batch  # noqa: PLC0415
  from data_pipeline.loader import default_mesh  # noqa: PLC0415
  from seq2exp_jax.ablation.driver import resolve_config  # noqa: PLC0415
  from seq2exp_jax.train.optim import learning_rate, make_optimizer  # noqa: PLC0415
  from seq2exp_jax.train.step import init_state, make_train_step, state_sharding  # noqa
  from seq2exp_jax.train.task import build_task  # noqa: PLC0415

  overrides = [f"train.dtype={dtype}"] if dtype else []
  overrides += [f"train.remat={remat}"] if remat is not None else []
  overrides += list(extra_overrides)
  config = resolve_config(name, variant, 0, None, overrides)
  config.model.center_len = min(config.model.center_len, length // 2)
  mesh = default_mesh()
  rng = np.random.default_rng(0)
  host = Batch(dna=np.eye(4, dtype=np.float32)[rng.integers(0, 4, (batch, length))],
               signals=rng.gamma(0.5, 2.0, (batch, length, NUM_SIGNALS)).astype(np.float32),
               rna_feat=rng.normal(size=(batch, NUM_RNA_FEATURES)).astype(np.float32),
               blacklist=np.zeros((batch, length), bool),
               includelist=np.ones((batch, length), bool),
               peaks=rng.random((batch, length)) < 0.03,
               target=rng.normal(size=(batch,)).astype(np.float32),
               valid=np.ones((batch,), bool))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  batch_arrays = jax.device_put(host, sharding)
  task = build_task(config)
  schedule = learning_rate(config.optim, config.train.steps)
  tx = make_optimizer(config.optim, schedule)
  shapes = jax.eval_shape(lambda: init_state(task, tx, batch_arrays, 0))
  shardings = state_sharding(shapes, mesh, config.train.shard_params)
  state = jax.jit(lambda: init_state(task, tx, batch_arrays, 0), out_shardings=shardings)()
  step = make_train_step(task, tx, schedule, shardings, mesh)
  memory = step.lower(state, batch_arrays).compile().memory_analysis()
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
          "temp_gib": getattr(memory, "temp_size_in_bytes", float("nan")) / 2**30,
          "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
          "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}"}


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--configs", default=DEFAULT)
  parser.add_argument("--paper", action="store_true", help="paper-size configs")
  parser.add_argument("--lengths", default="16384", help="comma-separated window lengths")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--dtype", choices=["float32", "bfloat16"])
  parser.add_argument("--remat", choices=["true", "false"], help="default: the config's")
  parser.add_argument("--one", help=argparse.SUPPRESS)  # child process: config
  parser.add_argument("--length", type=int, help=argparse.SUPPRESS)  # child process
  args = parser.parse_args()
  variant = "paper" if args.paper else "synthetic"
  remat = None if args.remat is None else args.remat == "true"
  if args.one:
    print(json.dumps(measure(args.one, variant, args.length, args.batch, args.steps,
                             args.dtype, remat)))
    return 0
  rows = []
  for name in args.configs.split(","):
    for length in (int(n) for n in args.lengths.split(",")):
      argv = ["--one", name, "--length", str(length), "--batch", str(args.batch), "--steps",
              str(args.steps)]
      argv += (["--paper"] if args.paper else []) + (["--dtype", args.dtype] if args.dtype
                                                     else [])
      argv += ["--remat", args.remat] if args.remat else []
      try:
        rows.append(run_child(__file__, argv))
      except ChildFailed as e:
        print(f"{name} L={length}: failed\n{e.stderr}", file=sys.stderr)
        continue
      print(json.dumps(rows[-1]), file=sys.stderr)
  if not rows:
    return 1
  print(f"\nfull train step, batch {args.batch}, {rows[0]['devices']}")
  print(f"{'config':<28} {'L':>8} {'dtype':>9} {'s/step':>8} {'examples/s':>11} "
        f"{'temp GiB':>9} {'peak GiB':>9} {'vs first':>9} {'vs original':>12}")
  for r in rows:
    original = ORIGINAL.get(r["length"]) if args.paper and args.batch == 1 else None
    vs = (f"{original[0] / r['seconds_per_step']:.1f}x, {original[1] / r['peak_gib']:.1f}x"
          if original else "")
    print(f"{r['config']:<28} {r['length']:>8,} {r['dtype']:>9} {r['seconds_per_step']:>8.2f} "
          f"{r['examples_per_second']:>11.2f} {r['temp_gib']:>9.2f} {r['peak_gib']:>9.2f} "
          f"{r['examples_per_second'] / rows[0]['examples_per_second']:>8.2f}x {vs:>12}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
