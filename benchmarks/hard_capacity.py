"""The hard variant's training step at the capacities `packing.capacity = "auto"` chooses
from, against capacity L, side by side in one run; and what "auto" chose in a training run.

    .venv/bin/python benchmarks/hard_capacity.py                     # synthetic size, L 16,384
    .venv/bin/python benchmarks/hard_capacity.py --paper --lengths 4096 --batch 1
    .venv/bin/python benchmarks/hard_capacity.py --run runs/hard     # a run's metrics.jsonl

The step is the trainer's own (`benchmarks/train_step.py`'s `measure`) of
seq2exp_hard:synthetic (or :paper, float32) on random inputs, its packed predictor at each
capacity (`model.capacity`; the packing's size is static, so the step's time depends on the
capacity and not on what is selected). The capacity buckets are those of
seq2exp_jax/train/capacity.py. `--run` prints, per logged step of a run trained with
"auto", the mean capacity, the selected positions per row and the overflow rate (positions
dropped / selected), and the run's overall overflow rate.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import train_step  # noqa: E402  (benchmarks/train_step.py)


def _step(variant: str, length: int, batch: int, steps: int, capacity: int) -> dict:
  try:
    return train_step.run_child(__file__, [
        "--one", variant, "--length", str(length), "--batch", str(batch), "--steps",
        str(steps), "--capacity", str(capacity)])
  except train_step.ChildFailed as e:
    raise SystemExit(f"capacity {capacity}: failed\n{e.stderr}") from None


def report_run(workdir: str) -> None:
  from seq2exp_jax.train.metric_writer import read_metrics  # noqa: PLC0415
  train = [r for r in read_metrics(workdir, "train") if "capacity" in r]
  print(f"\n{workdir}: packing.capacity = auto")
  print(f"{'step':>6} {'capacity':>9} {'selected/row':>13} {'overflow/row':>13} "
        f"{'overflow rate':>14} {'mask ratio':>11}")
  for r in train:
    print(f"{r['step']:>6} {r['capacity']:>9.0f} {r['selected']:>13.1f} {r['overflow']:>13.2f} "
          f"{r['overflow_rate']:>14.5f} {r.get('mask_ratio', float('nan')):>11.3f}")
  # every interval has the same number of steps and rows (log_every), so this is the run's
  selected = sum(r["selected"] for r in train)
  print(f"overall overflow rate: {sum(r['overflow'] for r in train) / max(selected, 1):.6f} "
        f"({len(train)} log intervals)")


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--paper", action="store_true", help="paper size, float32")
  parser.add_argument("--lengths", default="16384")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--fractions", default="1,0.625,0.5,0.375,0.25",
                      help="capacities as fractions of L (bucket-rounded)")
  parser.add_argument("--run", help="a workdir trained with packing.capacity=auto")
  parser.add_argument("--one", help=argparse.SUPPRESS)  # child: the variant
  parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
  parser.add_argument("--capacity", type=int, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.one:
    dtype = "float32" if args.one == "paper" else None
    print(json.dumps(train_step.measure(
        "seq2exp_hard", args.one, args.length, args.batch, args.steps, dtype, None,
        (f"model.capacity={args.capacity}",))))
    return 0
  if args.run:
    report_run(args.run)
    return 0
  from seq2exp_jax.train.capacity import buckets  # noqa: PLC0415
  variant = "paper" if args.paper else "synthetic"
  for length in (int(n) for n in args.lengths.split(",")):
    wanted = [float(f) for f in args.fractions.split(",")]
    capacities = sorted({min(c for c in buckets(length) if c >= f * length) for f in wanted},
                        reverse=True)
    rows = [_step(variant, length, args.batch, args.steps, c) for c in capacities]
    print(f"\nseq2exp_hard:{variant} train step, L {length:,}, batch {args.batch}, "
          f"{rows[0]['devices']}")
    print(f"{'capacity':>9} {'of L':>6} {'s/step':>8} {'temp GiB':>9} {'peak GiB':>9} "
          f"{'speed-up vs L':>14}")
    for c, r in zip(capacities, rows):
      print(f"{c:>9,} {c / length:>6.3f} {r['seconds_per_step']:>8.2f} {r['temp_gib']:>9.2f} "
            f"{r['peak_gib']:>9.2f} {rows[0]['seconds_per_step'] / r['seconds_per_step']:>13.2f}x")
  return 0


if __name__ == "__main__":
  sys.exit(main())
