"""A Seq2Exp-soft training step at paper size (D=128, 4 generator + 4 predictor layers,
batch 1): seconds per step and peak memory, at several window lengths, side by side.

    .venv/bin/python benchmarks/model_step.py                   # L in 4096, 8192, 16384, 200000
    .venv/bin/python benchmarks/model_step.py --lengths 4096 --batch 8 --dtype bfloat16

XLA:CPU uses its memory-minimising scheduler here, as the `seq2exp` commands do (see
seq2exp_jax/runtime.py); set XLA_FLAGS to override. Each length runs in its own subprocess
so that its peak resident memory (the process's
high-water mark, `ru_maxrss`, which on CPU includes XLA's buffers) is its own. The step is
forward + backward + an AdamW update, jitted with donated params and optimizer state, the
mask drawn from the Beta posterior as in training. Printed alongside: XLA's compiled temp
memory, and the original PyTorch code's numbers measured on the same 2-core machine
(41.8 s / 5.1 GiB at 4,096; 112.6 s / 9.7 GiB at 8,192; 16,384 did not fit in 24 GiB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

ORIGINAL = {4096: (41.8, 5.1), 8192: (112.6, 9.7)}  # seconds, GiB (PyTorch, this machine)


def measure(length: int, batch: int, dtype: str, steps: int, remat: bool) -> dict:
  import resource  # noqa: PLC0415

  from seq2exp_jax.commands import runtime  # noqa: PLC0415
  runtime.prefer_memory_saving_cpu_schedule()  # before JAX starts (see seq2exp_jax/runtime.py)

  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415
  import optax  # noqa: PLC0415

  from seq2exp_jax.model.heads import smooth_l1  # noqa: PLC0415
  from seq2exp_jax.model.seq2exp import Seq2Exp  # noqa: PLC0415

  model = Seq2Exp(d_model=128, n_gen_layer=4, n_enc_layer=4, center_len=min(2000, length),
                  remat=remat, dtype=jnp.dtype(dtype))
  k = jax.random.split(jax.random.PRNGKey(0), 5)
  dna = jax.nn.one_hot(jax.random.randint(k[0], (batch, length), 0, 4), 4)
  signals = jax.random.gamma(k[1], 0.5, (batch, length, 3))
  blacklist = jnp.zeros((batch, length), bool)
  rna = jax.random.normal(k[2], (batch, 9))
  target = jax.random.normal(k[3], (batch, 1))
  params = model.init(k[4], dna, signals, blacklist, rna)["params"]
  tx = optax.chain(optax.clip_by_global_norm(1.0),
                   optax.adamw(5e-4, b1=0.9, b2=0.95, weight_decay=1e-6))
  opt_state = tx.init(params)

  def loss_fn(p, key):
    out = model.apply({"params": p}, dna, signals, blacklist, rna, train=True,
                      rngs={"mask": key})
    return smooth_l1(out.prediction, target) + 0.01 * out.kl

  @jax.jit
  def step(p, o, key):
    loss, grads = jax.value_and_grad(loss_fn)(p, key)
    updates, o = tx.update(grads, o, p)
    return optax.apply_updates(p, updates), o, loss

  step = jax.jit(step.__wrapped__, donate_argnums=(0, 1))
  compiled = step.lower(params, opt_state, k[0]).compile()
  temp = compiled.memory_analysis().temp_size_in_bytes
  params, opt_state, loss = compiled(params, opt_state, k[0])  # warm-up
  jax.block_until_ready(loss)
  times = []
  for i in range(steps):
    t = time.perf_counter()
    params, opt_state, loss = compiled(params, opt_state, jax.random.fold_in(k[0], i))
    jax.block_until_ready(loss)
    times.append(time.perf_counter() - t)
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  return {"length": length, "batch": batch, "dtype": dtype, "seconds": min(times),
          "median_seconds": sorted(times)[len(times) // 2], "peak_gib": peak / 2 ** 30,
          "xla_temp_gib": temp / 2 ** 30, "loss": float(loss),
          "device": jax.devices()[0].device_kind}


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--lengths", default="4096,8192,16384,200000")
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--no-remat", action="store_true", help="keep every activation")
  parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process
  args = parser.parse_args()
  if args.one:
    print(json.dumps(measure(args.one, args.batch, args.dtype, args.steps, not args.no_remat)))
    return 0
  rows = []
  for length in (int(v) for v in args.lengths.split(",")):
    cmd = [sys.executable, __file__, "--one", str(length), "--batch", str(args.batch),
           "--dtype", args.dtype, "--steps", str(args.steps)] + (
               ["--no-remat"] if args.no_remat else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
      print(f"L={length}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
      rows.append({"length": length, "failed": True})
      continue
    rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(json.dumps(rows[-1]), file=sys.stderr)
  print(f"\nSeq2Exp-soft train step, D=128, 4+4 layers, batch {args.batch}, {args.dtype}, "
        f"remat={'off' if args.no_remat else 'per block'}")
  print(f"{'L':>8} {'s/step':>8} {'peak GiB':>9} {'XLA temp':>9} | {'orig s':>7} {'orig GiB':>8}"
        f" {'speed-up':>9} {'mem ratio':>9}")
  for r in rows:
    if r.get("failed"):
      print(f"{r['length']:>8} {'failed':>8}")
      continue
    orig = ORIGINAL.get(r["length"])
    extra = (f"{orig[0]:>7.1f} {orig[1]:>8.1f} {orig[0] / r['seconds']:>8.1f}x "
             f"{orig[1] / r['peak_gib']:>8.1f}x") if orig else (
                 f"{'OOM' if r['length'] == 16384 else '-':>7} {'-':>8} {'-':>9} {'-':>9}")
    print(f"{r['length']:>8} {r['seconds']:>8.2f} {r['peak_gib']:>9.2f} "
          f"{r['xla_temp_gib']:>9.2f} | {extra}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
