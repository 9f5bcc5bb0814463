"""The GPU check of the fused Pallas scan: the scan alone and the paper-size train step.

In one run: the scan alone, then the full Seq2Exp-soft training step at paper size,
seconds and peak device memory, one table with ratios.

    python benchmarks/gpu.py                 # on a GPU (never run on one yet: time unknown)
    python benchmarks/gpu.py --lengths 4096,65536 --timeout 180   # a shorter run
    python benchmarks/gpu.py --allow-cpu     # a tiny version on CPU: the script end to end

(a) The scan alone, forward + backward, B 8, E 256, N 16, bf16 x / step sizes / B / C / z,
    the step-size bias + softplus, D skip and gate fused as a Mamba block calls it: "pallas"
    (the fused kernels, one launch per scan) vs "chunked_associative" (what the chunked scan
    runs on GPU) vs "chunked_fused" vs "reference" (short L only: it keeps every state) at
    L 4,096 / 16,384 / 65,536 / 200,000 (`benchmarks/scan.py`'s measure).
(b) The trainer's own step (`benchmarks/train_step.py`'s measure: state, sharding, jitted
    donated step) of experiments/seq2exp_soft.py `paper` (D 128, 4 + 4 BiMamba blocks,
    remat), L 200,000, B 8, bf16, with model.backbone.scan_method pallas vs chunked.
    Target: <= 0.5 s per step on an H100/H200.

Each method runs in its own process, so one's memory does not count against another's: the
peak is the device allocator's high-water mark (`memory_stats()["peak_bytes_in_use"]`),
after the rows of that process in increasing L (memory grows with L, so it is the last
row's). On CPU there is no device allocator: the host's resident peak is shown instead.
Without a GPU the script says so and exits 2, unless --allow-cpu.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

SCAN_METHODS = ("pallas", "chunked_associative", "chunked_fused", "reference")
STEP_METHODS = ("pallas", "chunked")
FULL = dict(lengths="4096,16384,65536,200000", reference_max=16384, batch=8, inner=256,
            state=16, step_config="seq2exp_soft:paper", step_length=200_000, step_batch=8)
TINY = dict(lengths="64,200", reference_max=200, batch=2, inner=16, state=4,
            step_config="seq2exp_soft:smoke", step_length=256, step_batch=2)
TARGET_S = 0.5


def _peak_gib() -> float:
  """The device's peak bytes in use (GPU), or the process's resident peak (CPU)."""
  import resource  # noqa: PLC0415

  import jax  # noqa: PLC0415
  stats = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    return stats["peak_bytes_in_use"] / 2**30
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _child(args) -> list[dict]:
  """One method's rows, in this process: full sizes on a GPU, tiny ones on CPU."""
  from seq2exp_jax.commands import runtime  # noqa: PLC0415
  runtime.prefer_memory_saving_cpu_schedule()  # before JAX starts (CPU only), as train does
  import jax  # noqa: PLC0415
  on_gpu = jax.default_backend() == "gpu"
  if not on_gpu and not args.allow_cpu:
    return [{"error": f"no GPU: the default JAX backend is {jax.default_backend()!r} "
                      f"({jax.devices()[0].device_kind}); pass --allow-cpu for a tiny check"}]
  sizes = FULL if on_gpu else TINY
  device = f"{jax.device_count()} x {jax.devices()[0].device_kind}"
  common = dict(device=device, on_gpu=on_gpu)
  if args.part == "scan":
    import scan as scan_benchmark  # noqa: PLC0415  (benchmarks/scan.py)
    rows = []
    for length in (int(v) for v in (args.lengths or sizes["lengths"]).split(",")):
      if args.method == "reference" and length > sizes["reference_max"]:
        continue
      row = scan_benchmark.measure(args.method, length, sizes["batch"], sizes["inner"],
                                   sizes["state"], args.repeats, args.chunk, "bfloat16",
                                   fused=True)
      rows.append(dict(row, **common, peak_gib=_peak_gib()))
    return rows
  import train_step  # noqa: PLC0415  (benchmarks/train_step.py)
  name, variant = sizes["step_config"].split(":")
  row = train_step.measure(name, variant, sizes["step_length"], sizes["step_batch"],
                           args.steps, "bfloat16", True,
                           (f"model.backbone.scan_method={args.method}",))
  return [dict(row, **common, method=args.method, peak_gib=_peak_gib())]


def _run_child(argv: list[str], part: str, method: str, timeout: float) -> list[dict]:
  import train_step  # noqa: PLC0415  (benchmarks/train_step.py)
  try:
    return train_step.run_child(os.path.abspath(__file__),
                                [*argv, "--part", part, "--method", method], timeout=timeout)
  except subprocess.TimeoutExpired:
    return [{"error": f"{part} {method}: stopped after --timeout {timeout:.0f} s"}]
  except train_step.ChildFailed as e:
    return [{"error": f"{part} {method} failed (exit {e.returncode}):\n{e.stderr}"}]


def _scan_table(rows: list[dict], sizes) -> list[str]:
  by = {(r["method"], r["length"]): r for r in rows}
  head = f"{'L':>8} | " + " | ".join(f"{m:>19} s {'GiB':>6}" for m in SCAN_METHODS)
  out = [f"(a) scan alone, forward + backward, B {sizes['batch']}, E {sizes['inner']}, "
         f"N {sizes['state']}, bf16 inputs, fused bias/softplus/skip/gate; peak GiB",
         head + " | " + " ".join(f"{m.split('_')[-1][:5] + '/pallas':>13}"
                                 for m in SCAN_METHODS[1:])]
  for length in sorted({r["length"] for r in rows}):
    cells, ratios = [], []
    for m in SCAN_METHODS:
      r = by.get((m, length))
      cells.append(f"{r['fwd_bwd_s']:>21.4f} {r['peak_gib']:>6.2f}" if r else f"{'-':>28}")
      p = by.get(("pallas", length))
      if m != "pallas":
        ratios.append(f"{r['fwd_bwd_s'] / p['fwd_bwd_s']:>12.1f}x" if r and p else f"{'-':>13}")
    out.append(f"{length:>8,} | " + " | ".join(cells) + " | " + " ".join(ratios))
  return out


def _step_table(rows: list[dict], sizes, on_gpu: bool) -> list[str]:
  out = [f"(b) full train step, {sizes['step_config']}, L {sizes['step_length']:,}, "
         f"B {sizes['step_batch']}, bf16, remat",
         f"{'scan method':>12} {'s/step':>9} {'peak GiB':>9} {'vs pallas':>10} {'loss':>10}"]
  pallas = next((r for r in rows if r["method"] == "pallas"), None)
  for r in rows:
    ratio = r["seconds_per_step"] / pallas["seconds_per_step"] if pallas else float("nan")
    out.append(f"{r['method']:>12} {r['seconds_per_step']:>9.3f} {r['peak_gib']:>9.2f} "
               f"{ratio:>9.1f}x {r['loss']:>10.4f}")
  if pallas and on_gpu:
    met = "met" if pallas["seconds_per_step"] <= TARGET_S else "NOT met"
    out.append(f"target <= {TARGET_S} s/step with pallas: {met} "
               f"({pallas['seconds_per_step']:.3f} s)")
  return out


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--allow-cpu", action="store_true",
                      help="without a GPU, run a tiny version (a check that it runs)")
  parser.add_argument("--repeats", type=int, default=2, help="timed scan runs (best)")
  parser.add_argument("--steps", type=int, default=2, help="timed train steps (best)")
  parser.add_argument("--chunk", type=int, default=128, help="T of the scans")
  parser.add_argument("--lengths", help="scan lengths, comma-separated (default: "
                      f"{FULL['lengths']} on GPU, {TINY['lengths']} on CPU)")
  parser.add_argument("--timeout", type=float, default=300.0,
                      help="seconds per method's process (its rows are then left out)")
  parser.add_argument("--part", choices=["scan", "step"], help=argparse.SUPPRESS)
  parser.add_argument("--method", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.part:  # child process: one method, JSON rows on the last line
    print(json.dumps(_child(args)))
    return 0
  argv = sys.argv[1:]
  results = {"scan": [], "step": []}
  for part, methods in (("scan", SCAN_METHODS), ("step", STEP_METHODS)):
    for method in methods:
      rows = _run_child(argv, part, method, args.timeout)
      errors = [r["error"] for r in rows if "error" in r]
      if errors:
        print(f"benchmarks/gpu.py: {errors[0]}", file=sys.stderr)
        if errors[0].startswith("no GPU"):
          return 2
        continue
      results[part] += rows
      print(json.dumps(rows), file=sys.stderr, flush=True)
  if not results["scan"] and not results["step"]:
    return 1
  first = (results["scan"] or results["step"])[0]
  on_gpu = first["on_gpu"]
  sizes = FULL if on_gpu else TINY
  print(f"\n{first['device']}" + ("" if on_gpu else " (CPU: tiny sizes, pallas in interpret "
                                                   "mode; not a measurement)"))
  lines = _scan_table(results["scan"], sizes) if results["scan"] else []
  lines += [""] + _step_table(results["step"], sizes, on_gpu) if results["step"] else []
  print("\n".join(lines))
  return 0


if __name__ == "__main__":
  sys.exit(main())
