"""`seq2exp demo --workdir DIR` (what `make demo` runs): the main job end to end on the
embedded synthetic genome, from nothing.

1. `seq2exp benchmark` on a subset of the decisive `benchmark` preset (800 genes with 16 kb
   windows: 640 train / 56 valid / 104 test genes), one training seed: synth, build-data
   (with MACS3 DNase peaks), train Seq2Exp-soft, Caduceus with signals and the MACS3-mask
   predictor with their `synthetic` config variants (same data, steps, batch and schedule)
   on every local device, fit the simple and oracle baselines on the train genes, and print
   one table on the test genes with intervals and what it shows in words;
2. export Seq2Exp-soft with `jax.export` and check the artifact against the model;
3. the benchmark's `predict` of Seq2Exp-soft on the test split: predictions.csv, mask.bw,
   elements.bed and plots;
4. check the port against the original PyTorch code on the bundled golden file.

Everything is resumable: re-running skips finished steps.
"""

from __future__ import annotations

import argparse
import pathlib
import time

from seq2exp_jax.commands import arguments, dispatch

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "d_seq2exp_soft.npz"
CONTESTANTS = ("seq2exp_soft", "caduceus_signals", "macs3_mask")


def add_arguments(parser: argparse.ArgumentParser) -> None:
  from data_pipeline.synth import presets  # noqa: PLC0415
  parser.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("runs/demo"))
  parser.add_argument("--preset", default="benchmark", choices=list(presets.PRESETS))
  parser.add_argument("--genes", type=arguments.non_negative_int, default=800,
                      help="genes of the preset to use (0: the preset's own count)")
  parser.add_argument("--seed", type=int, default=0, help="the genome's seed")
  parser.add_argument("--steps", type=arguments.positive_int,
                      help="training steps (default: the configs')")


def _step(title: str):
  print(f"\n== {title}", flush=True)
  return time.perf_counter()


def run(args) -> int:
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415

  from seq2exp_jax.train import checkpoint  # noqa: PLC0415

  start = time.perf_counter()
  t = _step(f"benchmark: {', '.join(CONTESTANTS)} on the {args.preset} genome (seed "
            f"{args.seed}{f', {args.genes} genes' if args.genes else ''}), "
            f"{jax.device_count()} {jax.devices()[0].platform} device(s)")
  if dispatch.main(["benchmark", "--preset", args.preset, "--seed", str(args.seed),
                    "--workdir", str(args.workdir), "--seeds", "1",
                    "--models", ",".join(CONTESTANTS)]
                   + (["--genes", str(args.genes)] if args.genes else [])
                   + (["--steps", str(args.steps)] if args.steps else [])):
    return 1
  print(f"({time.perf_counter() - t:.0f} s)")
  runs_dir = args.workdir / "runs"

  t = _step("export Seq2Exp-soft (jax.export, symbolic batch) and run it without the model")
  soft_dir = runs_dir / "seq2exp_soft" / "seed_0"
  artifact = args.workdir / "export" / "seq2exp_soft.s2x"
  artifact.parent.mkdir(parents=True, exist_ok=True)
  if dispatch.main(["export", "--workdir", str(soft_dir), "--out", str(artifact)]):
    return 1
  from data_pipeline.batch import NUM_RNA_FEATURES, NUM_SIGNALS, Batch  # noqa: PLC0415
  from seq2exp_jax.outputs.serving import ExportedPredictor  # noqa: PLC0415
  from seq2exp_jax.train.task import build_task  # noqa: PLC0415
  served = ExportedPredictor.load(artifact)
  config, params, _ = checkpoint.load_run(soft_dir)
  rng = np.random.default_rng(args.seed)
  length = served.input_specs["dna"][0][1]
  inputs = {"dna": np.eye(4, dtype=np.float32)[rng.integers(0, 4, (2, length))],
            "signals": rng.gamma(0.5, 2.0, (2, length, NUM_SIGNALS)).astype(np.float32),
            "blacklist": np.zeros((2, length), bool),
            "rna_feat": rng.normal(size=(2, NUM_RNA_FEATURES)).astype(np.float32)}
  model_prediction = build_task(config).apply(params, Batch(**inputs)).prediction
  gap = np.abs(served(inputs)["prediction"] - np.asarray(model_prediction)).max()
  print(f"served vs model on 2 random windows: max |difference| {gap:.2e} "
        f"({time.perf_counter() - t:.0f} s)")

  _step("the port against the original PyTorch Seq2Exp (golden file)")
  if GOLDEN.exists():
    if dispatch.main(["verify-reference", str(GOLDEN)]):
      return 1
  else:
    print(f"{GOLDEN} not found (installed without the tests); skipped")
  print(f"\ndone in {(time.perf_counter() - start) / 60:.1f} min. Outputs under "
        f"{args.workdir}:\n  results.md, results.json   the comparison table\n"
        "  mask_mass.png         the masks' mass on causal elements and on each decoy\n"
        "  runs/<model>/seed_0/  config.json, metrics.jsonl, checkpoints/, best/, "
        "eval_test.json,\n                        predict/ (predictions.csv, mask.bw, "
        "elements.bed, plots)\n  export/seq2exp_soft.s2x   run it with "
        "seq2exp_jax/outputs/serving.py")
  return 0
