"""The paper-size Seq2Exp-soft training step on CPU against the original PyTorch code, and
where its time goes.

    .venv/bin/python benchmarks/model_step.py                  # L 4,096 and 8,192
    .venv/bin/python benchmarks/model_step.py --lengths 4096 --no-profile

Side by side in one run, each part in its own subprocess: the trainer's own jitted step
(`benchmarks/train_step.py`'s `measure`: D=128, 4 + 4 BiMamba layers, batch 1, float32,
remat, AdamW, loss terms, the memory-minimising XLA:CPU scheduler) with s/step and peak
memory, and the ratios against the original's 41.8 s / 5.1 GiB (L 4,096) and 112.6 s /
9.7 GiB (L 8,192) measured on the same 2-core machine. The profile splits the step into its
forward pass (the loss), backward pass (loss + gradient minus forward), optimizer and
bookkeeping (the step minus the gradient) and the selective scans inside them: each of the
8 BiMamba layers scans its two directions as one batch of 2 rows (E=256, N=16); with remat
a layer runs the scan's forward twice and its backward once. `scan, two directions apart`
times the same scan as two independent computations in one jitted function: XLA:CPU runs
them one after the other, so it is no faster (the two cores cannot share the scan that way).
`two devices` puts the two rows on two simulated CPU devices (one thread each): what running
the directions concurrently could give at most, and the step it would bound.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import train_step  # noqa: E402  (benchmarks/train_step.py)

LAYERS, ROWS, WIDTH, STATE = 8, 2, 256, 16  # paper size: 4 + 4 BiMamba layers, E, N


def _best(fn, *args, steps: int) -> float:
  import jax  # noqa: PLC0415
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return min(times)


def scan_seconds(length: int, steps: int) -> dict[str, float]:
  """One layer's scan (2 rows: the two directions), forward and forward + backward, joint
  and as two independent halves."""
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415

  from seq2exp_jax.model.scan import chunked_scan  # noqa: PLC0415
  k = jax.random.split(jax.random.PRNGKey(0), 6)
  x, dt, z = (jax.random.normal(k[i], (ROWS, length, WIDTH)) for i in range(3))
  a = -jnp.exp(jax.random.normal(k[3], (ROWS, WIDTH, STATE)))
  bm, cm = (jax.random.normal(k[i], (ROWS, length, STATE)) for i in (4, 5))
  d, bias = jnp.ones((WIDTH,)), jnp.zeros((WIDTH,))
  args = (x, dt * 0.1, a, bm, cm, z)

  def joint(*t):
    return jnp.sum(chunked_scan(t[0], t[1], t[2], t[3], t[4], d, t[5], bias, True) ** 2)

  def apart(*t):
    return sum(joint(*(u[i:i + 1] for u in t)) for i in range(ROWS))

  out = {}
  for name, fn in (("joint", joint), ("apart", apart)):
    out[f"{name}_forward"] = _best(jax.jit(fn), *args, steps=steps)
    out[f"{name}_both"] = _best(jax.jit(jax.grad(fn, argnums=range(6))), *args, steps=steps)
  # The two rows on two devices (each simulated CPU device has its own thread): the most
  # that running the directions concurrently could give.
  mesh = jax.sharding.Mesh(jax.devices()[:ROWS], ("rows",))
  rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("rows"))
  placed = [jax.device_put(t, rows) for t in args]
  out["devices_both"] = _best(jax.jit(jax.grad(joint, argnums=range(6))), *placed,
                              steps=steps)
  return out


def loss_seconds(length: int, steps: int) -> dict[str, float]:
  """The paper config's loss (forward) and loss + gradient, jitted, batch 1."""
  from seq2exp_jax.commands import runtime  # noqa: PLC0415
  runtime.prefer_memory_saving_cpu_schedule()
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415

  from data_pipeline.batch import Batch  # noqa: PLC0415
  from seq2exp_jax.ablation.driver import resolve_config  # noqa: PLC0415
  from seq2exp_jax.train.task import build_task  # noqa: PLC0415
  config = resolve_config("seq2exp_soft", "paper", 0, None, ["train.dtype=float32"])
  task = build_task(config)
  rng = np.random.default_rng(0)
  batch = Batch(dna=np.eye(4, dtype=np.float32)[rng.integers(0, 4, (1, length))],
                signals=rng.gamma(0.5, 2.0, (1, length, 3)).astype(np.float32),
                rna_feat=rng.normal(size=(1, 9)).astype(np.float32),
                blacklist=np.zeros((1, length), bool), target=np.zeros((1,), np.float32))
  params = task.init(jax.random.PRNGKey(0), batch)
  key = jax.random.PRNGKey(1)
  forward = jax.jit(lambda p, b: task.loss(p, b, key)[0])
  both = jax.jit(jax.grad(lambda p, b: task.loss(p, b, key)[0]))
  return {"forward": _best(forward, params, batch, steps=steps),
          "gradient": _best(both, params, batch, steps=steps)}


def _child(kind: str, length: int, steps: int) -> dict:
  env = dict(os.environ)
  if kind == "scan":  # two simulated devices for the "two devices" row
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "")
                        + f" --xla_force_host_platform_device_count={ROWS}").strip()
  try:
    return train_step.run_child(__file__, ["--one", kind, "--length", str(length),
                                           "--steps", str(steps)], env)
  except train_step.ChildFailed as e:
    raise SystemExit(f"{kind} L={length}: failed\n{e.stderr}") from None


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--lengths", default="4096,8192")
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--no-profile", action="store_true")
  parser.add_argument("--one", help=argparse.SUPPRESS)  # child: step | loss | scan
  parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.one:
    one = {"step": lambda: train_step.measure("seq2exp_soft", "paper", args.length, 1,
                                              args.steps, "float32", None),
           "loss": lambda: loss_seconds(args.length, args.steps),
           "scan": lambda: scan_seconds(args.length, args.steps)}[args.one]
    print(json.dumps(one()))
    return 0
  lengths = [int(n) for n in args.lengths.split(",")]
  rows = {n: _child("step", n, args.steps) for n in lengths}
  print(json.dumps(rows), file=sys.stderr)
  print("\nseq2exp_soft:paper train step, batch 1, float32, remat, "
        f"{rows[lengths[0]]['devices']}")
  print(f"{'L':>7} {'s/step':>7} {'temp GiB':>9} {'peak GiB':>9} {'original s':>11} "
        f"{'original GiB':>13} {'speed-up, memory':>17}")
  for n, r in rows.items():
    orig = train_step.ORIGINAL.get(n, (float("nan"),) * 2)
    ratios = f"{orig[0] / r['seconds_per_step']:.1f}x, {orig[1] / r['peak_gib']:.1f}x"
    print(f"{n:>7,} {r['seconds_per_step']:>7.2f} {r['temp_gib']:>9.2f} {r['peak_gib']:>9.2f} "
          f"{orig[0]:>11.1f} {orig[1]:>13.1f} {ratios:>17}")
  if args.no_profile:
    return 0
  for n in lengths:
    loss, scan = _child("loss", n, args.steps), _child("scan", n, args.steps)
    step = rows[n]["seconds_per_step"]
    scans = LAYERS * (scan["joint_both"] + scan["joint_forward"])  # remat: forward twice
    parts = [
        ("train step (the trainer's)", step),
        ("  forward (loss)", loss["forward"]),
        ("  backward (gradient - forward)", loss["gradient"] - loss["forward"]),
        ("  optimizer + bookkeeping (step - gradient)", step - loss["gradient"]),
        (f"  selective scans: {LAYERS} x (forward + forward + backward)", scans),
        ("  everything else (step - scans)", step - scans),
        ("one layer's scan, forward", scan["joint_forward"]),
        ("one layer's scan, forward + backward", scan["joint_both"]),
        ("  the same, two directions apart", scan["apart_both"]),
        ("  the same, the two directions on two devices", scan["devices_both"]),
        (f"  step if every scan ran at that speed ({LAYERS} x)",
         step - scans * (1 - scan["devices_both"] / scan["joint_both"])),
    ]
    print(f"\nwhere the time goes, L {n:,} (ms; each part measured alone)")
    for name, seconds in parts:
      print(f"{name:<58} {seconds * 1e3:>9.0f} {seconds / step:>7.0%}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
