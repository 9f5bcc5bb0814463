"""`seq2exp benchmark --preset NAME --seed S --workdir DIR [--seeds K] [--models A,B,...]`:
the method against its baselines where the truth is known (docs/benchmark.md).

1. `synth --preset NAME --seed S` (the genome: `--seed` changes the genome, not only the
   training) and `build-data` on the preset's fold, in DIR/data and DIR/tfds;
2. every model for training seeds 0..K-1 with its `--variant` config (default synthetic)
   in DIR/runs/<model>/seed_<k>, each evaluated on the test split and `predict`ed there
   (predictions.csv, and mask.bw for models with a mask);
3. the simple models and the oracle (`evaluation/simple_models.py`), fitted on the train
   split only, and the untrained signal prior's mask;
4. DIR/results.md and DIR/results.json (schema in `ablation/benchmark_table.py`): per
   method the metrics of every seed, 95% intervals over seeds and over genes, the mask's
   AUPRC, ratio and mass on causal elements and on each kind of decoy, and the Pearson
   differences that decide whether the method works, what they show in words, and
   DIR/mask_mass.png (each masked model's mask mass on causal elements and on each decoy).

Everything is resumable: finished steps are skipped.
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib

from seq2exp_jax.commands import arguments

ACCEPTS_CONFIG_OVERRIDES = True
MODELS = ("seq2exp_soft", "seq2exp_hard", "caduceus", "caduceus_signals", "macs3_mask",
          "seq2exp_retrain_top10", "seq2exp_soft_contact", "caduceus_signals_contact",
          "epinformer", "enformer", "prism")


def add_arguments(parser: argparse.ArgumentParser) -> None:
  from data_pipeline.synth import presets  # noqa: PLC0415
  parser.add_argument("--preset", default="benchmark", choices=list(presets.PRESETS))
  parser.add_argument("--seed", type=int, default=0, help="the genome's seed")
  parser.add_argument("--genes", type=arguments.positive_int,
                      help="override the preset's gene count")
  parser.add_argument("--workdir", required=True, type=pathlib.Path)
  parser.add_argument("--seeds", type=arguments.positive_int, default=3,
                      help="training seeds 0 .. K-1")
  parser.add_argument("--models", type=arguments.comma_list, default=list(MODELS),
                      help="comma-separated experiment names (experiments/<name>.py)")
  parser.add_argument("--variant", default="synthetic", choices=["smoke", "synthetic"])
  parser.add_argument("--steps", type=arguments.positive_int,
                      help="training steps (default: the configs')")
  parser.epilog = "--config.<field>=<value> applies to every run."


def _data(args, dispatch) -> tuple[pathlib.Path, pathlib.Path, dict]:
  from data_pipeline import tfds_builder  # noqa: PLC0415
  root = args.workdir / "data"
  if not (root / "truth" / "labels.json").is_file():
    status = dispatch.main(["synth", "--out", str(root), "--preset", args.preset, "--seed",
                            str(args.seed), "--quiet", "--overwrite"]
                           + (["--genes", str(args.genes)] if args.genes else []))
    if status:  # synth printed why
      raise SystemExit(status)
  truth = json.loads((root / "truth" / "labels.json").read_text())
  window, fold = int(truth["window"]), int(truth.get("fold", 11))
  ds_dir = tfds_builder.dataset_dir(args.workdir / "tfds",
                                    tfds_builder.make_config("K562", window, fold))
  if not (ds_dir / "dataset_info.json").is_file():
    status = dispatch.main(["build-data", "--data-root", str(root), "--window", str(window),
                            "--fold", str(fold), "--out", str(args.workdir / "tfds")])
    if status:  # build-data printed why
      raise SystemExit(status)
  return root, ds_dir, truth


def _predictions(path: pathlib.Path) -> dict[str, tuple[float, float]]:
  with path.open() as f:
    return {r["ensid"]: (float(r["target"]), float(r["prediction"]))
            for r in csv.DictReader(f)}


def run(args) -> int:
  import numpy as np  # noqa: PLC0415

  from data_pipeline import io  # noqa: PLC0415
  from seq2exp_jax.ablation import benchmark_table  # noqa: PLC0415
  from seq2exp_jax.ablation.driver import resolve_config, run_one  # noqa: PLC0415
  from seq2exp_jax.commands import dispatch  # noqa: PLC0415
  from seq2exp_jax.evaluation import mask_quality, simple_models  # noqa: PLC0415
  from seq2exp_jax.evaluation.evaluate import eval_loader  # noqa: PLC0415
  from seq2exp_jax.outputs import plots  # noqa: PLC0415
  from seq2exp_jax.train.task import build_model  # noqa: PLC0415

  runs = args.workdir / "runs"
  for name in args.models:  # every name and override is checked before any work starts
    resolve_config(name, args.variant, 0, runs, args.config_overrides)
  root, ds_dir, truth = _data(args, dispatch)
  overrides = [f"data.dir={ds_dir}", "train.progress=false"] + (
      [f"train.steps={args.steps}"] if args.steps else []) + list(args.config_overrides)
  methods, per_gene = {}, {}
  for name in args.models:
    entry = {"pearson": [], "mse": [], "mask_auprc": [], "mask_ratio": [], "runs": [],
             "mask_mass_by_class": None}
    masses, gene_predictions = [], []
    for seed in range(args.seeds):
      config = resolve_config(name, args.variant, seed, runs, overrides)
      workdir = runs / name / f"seed_{seed}"
      print(f"== {name} seed {seed} ({config.train.steps} steps)", flush=True)
      result = run_one(config, workdir)
      predict = workdir / "predict"
      if not (predict / "predictions.csv").is_file():
        if dispatch.main(["predict", "--workdir", str(workdir), "--data", str(ds_dir),
                          "--split", "test", "--out", str(predict), "--plot-genes", "2"]):
          return 1
      rows = _predictions(predict / "predictions.csv")
      gene_predictions.append(rows)
      entry["pearson"].append(result["pearson"])
      entry["mse"].append(result["mse"])
      entry["runs"].append(str(workdir))
      if "auprc" in result:
        entry["mask_auprc"].append(result["auprc"])
        entry["mask_ratio"].append(result["mask_ratio"])
      if (predict / "mask.bw").is_file():
        masses.append(mask_quality.mask_mass_by_class(predict / "mask.bw", root, set(rows)))
    if masses:
      entry["mask_mass_by_class"] = {k: float(np.mean([m[k] for m in masses]))
                                     for k in masses[0]}
    for key in ("mask_auprc", "mask_ratio"):
      entry[key] = entry[key] or None
    methods[name] = entry
    genes = sorted(gene_predictions[0])
    per_gene[name] = (np.array([gene_predictions[0][g][0] for g in genes]),
                      np.array([np.mean([p[g][1] for p in gene_predictions]) for g in genes]),
                      genes)

  cached = args.workdir / "simple_models.json"
  if not cached.is_file():
    io.write_json(cached, simple_models.evaluate_simple_models(root, ds_dir))
  simple = json.loads(cached.read_text())
  for name in (*simple_models.MODELS, simple_models.ORACLE):
    s = simple[name]
    methods[name] = {"pearson": [s["pearson"]], "mse": [s["mse"]], "mask_auprc": None,
                     "mask_ratio": None, "mask_mass_by_class": None, "runs": []}
    order = np.argsort(s["ensid"])
    per_gene[name] = (np.asarray(s["target"])[order], np.asarray(s["prediction"])[order],
                      sorted(s["ensid"]))

  soft = resolve_config("seq2exp_soft", args.variant, 0, runs, overrides)
  bottleneck = build_model(soft.model).bottleneck
  prior = mask_quality.prior_mask_metrics(
      eval_loader(str(ds_dir), "test", 8, window=soft.data.window), bottleneck,
      soft.model.center_len)

  target, _, reference_genes = per_gene[simple_models.ORACLE]
  predictions = {n: p for n, (_, p, g) in per_gene.items() if g == reference_genes}
  genes, differences = benchmark_table.gene_level(target, predictions)
  results = {"preset": args.preset, "seed": args.seed, "n_test_genes": len(reference_genes),
             "noise_ceiling": simple["noise_ceiling"],
             "prior_mask": {"auprc": prior["auprc"], "mask_ratio": prior["mask_ratio"]},
             "methods": methods, "genes": genes, "differences": differences}
  masses = {n: m["mask_mass_by_class"] for n, m in methods.items() if m["mask_mass_by_class"]}
  text = benchmark_table.markdown(results) + "".join(
      "\n" + benchmark_table.verdict(results, name)
      for name in ("seq2exp_soft", "seq2exp_soft_contact") if name in methods)
  with io.file_set(args.workdir) as out:  # the table, its JSON and its plot as one set
    io.write_json(out / "results.json", results)
    if masses:
      plots.mask_mass_bars(out / "mask_mass.png", masses,
                           title=f"{args.preset} genome seed {args.seed}: test genes")
    io.write_text(out / "results.md", text)
  print("\n" + text + f"\nwritten to {args.workdir / 'results.md'}"
        + (f" and {args.workdir / 'mask_mass.png'}" if masses else ""))
  return 0
