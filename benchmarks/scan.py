"""Selective scan: scan methods side by side (the step-by-step reference vs the chunked scan
by default), forward and forward + backward.

    .venv/bin/python benchmarks/scan.py                       # L in 4k, 16k, 64k, 200k
    .venv/bin/python benchmarks/scan.py --lengths 4096 --batch 2
    .venv/bin/python benchmarks/scan.py --methods chunked_fused,chunked_associative,pallas \\
        --dtype bfloat16 --fused                              # as a Mamba block calls it

E=256 (D=128, expand 2), N=16, batch 1 by default. For each method and length: seconds for
the forward and for forward + backward (best of --repeats runs after a warm-up), and the
memory XLA plans for forward + backward (temp buffers; the inputs, y, dy and gradients are
arguments and results and are the same for every method). Ratios are the first method's
over each other's. `--fused` adds what a Mamba block fuses into the scan (raw step sizes
with bias + softplus, the D skip, the SiLU gate); `--dtype bfloat16` gives x, the step
sizes, B, C and z in bf16. "pallas" runs in interpret mode on CPU (slow: a check, not a
measurement); benchmarks/gpu.py runs these on a GPU.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp

from seq2exp_jax.model import scan


def _inputs(batch, length, inner, state, dtype, fused):
  """(x, delta, A, B, C, D, z, bias): D, z, bias None unless `fused`."""
  k = jax.random.split(jax.random.PRNGKey(0), 7)
  x, b, c, z = (jax.random.normal(k[i], (batch, length, n)).astype(dtype)
                for i, n in ((0, inner), (3, state), (4, state), (5, inner)))
  raw = jax.random.normal(k[1], (batch, length, inner)) - 2.0
  delta = (raw if fused else jax.nn.softplus(raw)).astype(dtype)
  A = -jnp.exp(0.5 * jax.random.normal(k[2], (inner, state)))
  if not fused:
    return x, delta, A, b, c, None, None, None
  return x, delta, A, b, c, jnp.ones((inner,)), z, jnp.full((inner,), -1.0)


def _best(fn, args, repeats):
  jax.block_until_ready(fn(*args))
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - t)
  return best


def measure(method: str, length: int, batch: int, inner: int, state: int, repeats: int,
            chunk: int, dtype: str = "float32", fused: bool = False) -> dict:
  """Seconds (forward; forward + backward) and XLA's temp GiB of one method at one size."""
  args = _inputs(batch, length, inner, state, jnp.dtype(dtype), fused)
  kw = dict(method=method, chunk_size=chunk, delta_softplus=fused)

  def run(x, delta, A, b, c, D, z, bias):
    return scan.selective_scan(x, delta, A, b, c, D=D, z=z, delta_bias=bias, **kw)

  forward = jax.jit(run)

  def forward_backward(a, dy):
    y, vjp = jax.vjp(run, *a)
    return y, vjp(dy)

  fb = jax.jit(forward_backward)
  dy = jnp.ones((batch, length, inner), jnp.float32)
  compiled = fb.lower(args, dy).compile()
  temp = compiled.memory_analysis().temp_size_in_bytes
  return {"method": method, "length": length, "fwd_s": _best(forward, args, repeats),
          "fwd_bwd_s": _best(lambda a, d: compiled(a, d), (args, dy), repeats),
          "temp_gib": temp / 2 ** 30}


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--lengths", default="4096,16384,65536,200000")
  parser.add_argument("--methods", default="reference,chunked",
                      help=f"comma-separated keys of SCAN_METHODS: {sorted(scan.SCAN_METHODS)}")
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--inner", type=int, default=256, help="E")
  parser.add_argument("--state", type=int, default=16, help="N")
  parser.add_argument("--chunk", type=int, default=scan.DEFAULT_CHUNK_SIZE)
  parser.add_argument("--repeats", type=int, default=2)
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument("--fused", action="store_true", help="bias + softplus, D skip, gate")
  args = parser.parse_args()
  methods = args.methods.split(",")
  print(f"selective scan, B={args.batch} E={args.inner} N={args.state}, chunk {args.chunk}, "
        f"{args.dtype} inputs{', fused step sizes/skip/gate' if args.fused else ''}, "
        f"'chunked' kernel '{scan.default_inner()}', {jax.devices()[0].device_kind}")
  print(f"{'L':>7} | " + " | ".join(f"{m + ' fwd':>13} {'fwd+bwd':>8} {'temp GiB':>8}"
                                    for m in methods)
        + "".join(f" | {m[:10] + ' time x':>17} {'memory x':>8}" for m in methods[1:]))
  for length in (int(v) for v in args.lengths.split(",")):
    rows = [measure(m, length, args.batch, args.inner, args.state, args.repeats, args.chunk,
                    args.dtype, args.fused) for m in methods]
    first = rows[0]
    print(f"{length:>7} | "
          + " | ".join(f"{r['fwd_s']:>13.3f} {r['fwd_bwd_s']:>8.3f} {r['temp_gib']:>8.3f}"
                       for r in rows)
          + "".join(f" | {first['fwd_bwd_s'] / r['fwd_bwd_s']:>17.1f} "
                    f"{first['temp_gib'] / max(r['temp_gib'], 1e-9):>8.1f}" for r in rows[1:]),
          flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
