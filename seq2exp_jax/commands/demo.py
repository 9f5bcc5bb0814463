"""`seq2exp demo --workdir DIR` (what `make demo` runs): the main job end to end on the
embedded synthetic genome, from nothing.

1. `synth --preset small` and `build-data` (with MACS3 DNase peaks);
2. train Seq2Exp-soft, Caduceus with signals and the MACS3-mask predictor, each with its
   `synthetic` config variant (same data, steps, batch and schedule), on every local device;
3. evaluate each best-on-validation checkpoint on the test split and print one table (MSE,
   Pearson, mask AUPRC against the planted causal bases, mask ratio, the noise ceiling);
4. export Seq2Exp-soft with `jax.export` and check the artifact against the model;
5. `predict` with Seq2Exp-soft: predictions.csv, mask.bw, elements.bed and plots;
6. check the port against the original PyTorch code on the bundled golden file.

Everything is resumable: re-running skips finished steps.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

from seq2exp_jax.commands import dispatch

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "d_seq2exp_soft.npz"
CONTESTANTS = ("seq2exp_soft", "caduceus_signals", "macs3_mask")


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("runs/demo"))
  parser.add_argument("--preset", default="small", choices=["tiny", "small", "medium"])
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--steps", type=int, help="training steps (default: the configs')")


def _step(title: str):
  print(f"\n== {title}", flush=True)
  return time.perf_counter()


def _data(args) -> tuple[pathlib.Path, dict]:
  """Synthetic genome and its prepared data set (built once)."""
  from data_pipeline.layout import GeneExpLayout  # noqa: PLC0415
  root, tfds_dir = args.workdir / "data", args.workdir / "tfds"
  t = _step(f"synthetic genome ({args.preset}) -> {root}")
  if not GeneExpLayout(root).chr_length_json.exists():
    if dispatch.main(["synth", "--out", str(root), "--preset", args.preset, "--seed",
                 str(args.seed), "--quiet"]):
      raise SystemExit(1)
  truth = json.loads((root / "truth" / "labels.json").read_text())
  window = int(truth["window"])
  print(f"{len(truth['genes'])} genes, window {window:,} bp, noise-ceiling Pearson "
        f"{truth['noise_ceiling_pearson']:.3f} ({time.perf_counter() - t:.0f} s)")
  t = _step(f"prepared data set with MACS3 DNase peaks -> {tfds_dir}")
  ds_dir = tfds_dir / "geneexp" / f"k562_{window}" / "1.0.0"
  if not (ds_dir / "dataset_info.json").is_file():
    if dispatch.main(["build-data", "--data-root", str(root), "--window", str(window),
                 "--out", str(tfds_dir)]):
      raise SystemExit(1)
  print(f"{ds_dir} ({time.perf_counter() - t:.0f} s)")
  return ds_dir, truth


def run(args) -> int:
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415

  from data_pipeline import io  # noqa: PLC0415
  from seq2exp_jax.ablation.driver import resolve_config, run_one  # noqa: PLC0415
  from seq2exp_jax.ablation.table import table  # noqa: PLC0415
  from seq2exp_jax.train import checkpoint  # noqa: PLC0415

  start = time.perf_counter()
  ds_dir, truth = _data(args)
  runs_dir = args.workdir / "runs"
  results = {}
  for name in CONTESTANTS:
    config = resolve_config(name, "synthetic", args.seed, runs_dir,
                            [f"data.dir={ds_dir}", "train.progress=false"] + (
                                [f"train.steps={args.steps}"] if args.steps else []))
    t = _step(f"train {name} ({config.train.steps} steps, batch {config.train.batch_size}, "
              f"{jax.device_count()} {jax.devices()[0].platform} device(s))")
    results[name] = [run_one(config, runs_dir / name / f"seed_{args.seed}")]
    r = results[name][0]
    print(f"test: MSE {r['mse']:.4f}, Pearson {r['pearson']:.4f}"
          + (f", mask AUPRC {r['auprc']:.4f}" if "auprc" in r else "")
          + f" ({time.perf_counter() - t:.0f} s)")

  _step("comparison on the test split (best-on-validation checkpoints)")
  ceiling = truth["noise_ceiling_pearson"]
  text = table(results, with_mask=True, extra_rows={
      "noise ceiling (noise-free vs noisy labels)": {"pearson": f"{ceiling:.4f}"}})
  causal = next((r[0].get("causal_fraction") for r in results.values()
                 if "causal_fraction" in r[0]), None)
  note = (f"\nMask AUPRC: planted causal bases outside the promoter; a random mask scores "
          f"their fraction, {causal:.4f}.\n" if causal is not None else "")
  print(text + note)
  io.write_text(args.workdir / "results.md", text + note)

  t = _step("export Seq2Exp-soft (jax.export, symbolic batch) and run it without the model")
  soft_dir = runs_dir / "seq2exp_soft" / f"seed_{args.seed}"
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

  t = _step("predict with Seq2Exp-soft on the test split: tracks, elements, plots")
  predict_dir = args.workdir / "predict"
  if dispatch.main(["predict", "--workdir", str(soft_dir), "--data", str(ds_dir), "--split",
               "test", "--out", str(predict_dir)]):
    return 1

  _step("the port against the original PyTorch Seq2Exp (golden file)")
  if GOLDEN.exists():
    if dispatch.main(["verify-reference", str(GOLDEN)]):
      return 1
  else:
    print(f"{GOLDEN} not found (installed without the tests); skipped")
  print(f"\ndone in {(time.perf_counter() - start) / 60:.1f} min. Outputs under "
        f"{args.workdir}:\n  results.md            the comparison table\n"
        f"  runs/<model>/seed_{args.seed}/   config.json, metrics.jsonl, checkpoints/, best/, "
        f"eval_test.json\n  export/seq2exp_soft.s2x   run it with "
        "seq2exp_jax/outputs/serving.py\n"
        f"  predict/              predictions.csv, mask.bw, elements.bed, "
        f"predicted_vs_observed.png, genes/*.png")
  return 0
