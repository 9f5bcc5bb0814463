"""Selective scan: the step-by-step reference vs the chunked scan, side by side.

    .venv/bin/python benchmarks/scan.py                       # L in 4k, 16k, 64k, 200k
    .venv/bin/python benchmarks/scan.py --lengths 4096 --batch 2

E=256 (D=128, expand 2), N=16, batch 1 by default. For each method and length: seconds for
the forward and for forward + backward (best of --repeats runs after a warm-up), and the
memory XLA plans for forward + backward (temp buffers; the inputs, y, dy and gradients are
arguments and results and are the same for both methods). Ratios are reference / chunked.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp

from seq2exp_jax.model import scan


def _inputs(batch, length, inner, state):
  k = jax.random.split(jax.random.PRNGKey(0), 5)
  return (jax.random.normal(k[0], (batch, length, inner)),
          jax.nn.softplus(jax.random.normal(k[1], (batch, length, inner)) - 2.0),
          -jnp.exp(0.5 * jax.random.normal(k[2], (inner, state))),
          jax.random.normal(k[3], (batch, length, state)),
          jax.random.normal(k[4], (batch, length, state)))


def _best(fn, args, repeats):
  jax.block_until_ready(fn(*args))
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - t)
  return best


def measure(method, length, batch, inner, state, repeats, chunk):
  args = _inputs(batch, length, inner, state)
  kw = dict(method=method, chunk_size=chunk)
  forward = jax.jit(lambda *a: scan.selective_scan(*a, **kw))

  def forward_backward(a, dy):
    y, vjp = jax.vjp(lambda *v: scan.selective_scan(*v, **kw), *a)
    return y, vjp(dy)

  fb = jax.jit(forward_backward)
  dy = jnp.ones((batch, length, inner), jnp.float32)
  compiled = fb.lower(args, dy).compile()
  temp = compiled.memory_analysis().temp_size_in_bytes
  return {"fwd_s": _best(forward, args, repeats),
          "fwd_bwd_s": _best(lambda a, d: compiled(a, d), (args, dy), repeats),
          "temp_gib": temp / 2 ** 30}


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--lengths", default="4096,16384,65536,200000")
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--inner", type=int, default=256, help="E")
  parser.add_argument("--state", type=int, default=16, help="N")
  parser.add_argument("--chunk", type=int, default=scan.DEFAULT_CHUNK_SIZE)
  parser.add_argument("--repeats", type=int, default=2)
  args = parser.parse_args()
  print(f"selective scan, B={args.batch} E={args.inner} N={args.state}, chunk "
        f"{args.chunk}, kernel '{scan.default_inner()}', {jax.devices()[0].device_kind}")
  print(f"{'L':>7} | {'reference fwd':>13} {'fwd+bwd':>8} {'temp GiB':>8} | "
        f"{'chunked fwd':>11} {'fwd+bwd':>8} {'temp GiB':>8} | {'time x':>6} {'memory x':>8}")
  for length in (int(v) for v in args.lengths.split(",")):
    r = measure("reference", length, args.batch, args.inner, args.state, args.repeats,
                args.chunk)
    c = measure("chunked", length, args.batch, args.inner, args.state, args.repeats,
                args.chunk)
    print(f"{length:>7} | {r['fwd_s']:>13.3f} {r['fwd_bwd_s']:>8.3f} {r['temp_gib']:>8.3f} | "
          f"{c['fwd_s']:>11.3f} {c['fwd_bwd_s']:>8.3f} {c['temp_gib']:>8.3f} | "
          f"{r['fwd_bwd_s'] / c['fwd_bwd_s']:>6.1f} {r['temp_gib'] / c['temp_gib']:>8.1f}",
          flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
