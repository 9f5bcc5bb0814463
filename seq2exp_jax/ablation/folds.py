"""The leave-chromosome-out protocol of `ablate --folds` (docs/data.md, "Folds"): every
config x fold x seed trained in DIR/<config>/fold_<k>/seed_<s> on that fold's data set
(config.data.dir with {fold} replaced; missing ones built from a data root with
--build-from), then per-fold rows and the pooled out-of-fold metrics as EPInformer reports
them: every fold's test predictions concatenated, each gene predicted by the model whose
test fold holds it, and the metrics computed once over all genes (per seed, then mean ± std
over seeds); the seed-mean prediction's pooled Pearson with its 95% bootstrap interval over
genes; and the mean ± std over folds of each fold's seed-mean metrics.
"""

from __future__ import annotations

import csv
import math
import pathlib
from typing import Any, Callable, Sequence

import ml_collections
import numpy as np

from data_pipeline import io
from data_pipeline.errors import ConfigError, DataFormatError, MissingInputError
from seq2exp_jax.ablation import statistics
from seq2exp_jax.ablation.driver import (PREDICTION_COLUMNS, predictions_file, resolve_config,
                                         run_dir, run_one)
from seq2exp_jax.ablation.table import MASK_METRICS, METRICS, table
from seq2exp_jax.evaluation.streaming import RegressionMetrics

Predictions = dict[str, tuple[float, float]]  # ensid -> (target, prediction)
RunFn = Callable[[ml_collections.ConfigDict, pathlib.Path, str], dict[str, Any]]


class OverlappingFolds(ValueError):
  """A gene is in the evaluated split of two folds: there is no single out-of-fold model."""


def read_predictions(path: str | pathlib.Path) -> Predictions:
  """{ensid: (target, prediction)} of a run's <split>_predictions.csv."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise MissingInputError(f"{path}: per-gene predictions not found (written when a run is "
                            "evaluated; rerun ablate to evaluate it again)")
  with path.open(newline="") as f:
    reader = csv.DictReader(f)
    if list(reader.fieldnames or ()) != list(PREDICTION_COLUMNS):
      raise DataFormatError(f"{path}: header {reader.fieldnames}, expected "
                            f"{list(PREDICTION_COLUMNS)}")
    out: Predictions = {}
    for row in reader:
      try:
        pair = (float(row["target"]), float(row["prediction"]))
      except (TypeError, ValueError):
        raise DataFormatError(f"{path}: row {reader.line_num}: target and prediction must "
                              "be numbers") from None
      if row["ensid"] in out:
        raise DataFormatError(f"{path}: row {reader.line_num}: gene {row['ensid']} twice")
      out[row["ensid"]] = pair
  return out


def pool(per_fold: dict[int, Predictions]) -> Predictions:
  """Every fold's genes in one table; raises OverlappingFolds if a gene is in two."""
  pooled: Predictions = {}
  fold_of: dict[str, int] = {}
  for fold, genes in sorted(per_fold.items()):
    for ensid, pair in genes.items():
      if ensid in pooled:
        raise OverlappingFolds(f"gene {ensid} is in the split of folds {fold_of[ensid]} and "
                               f"{fold}")
      pooled[ensid], fold_of[ensid] = pair, fold
  return pooled


def regression(genes: Predictions) -> dict[str, float]:
  """n, MSE, MAE, Pearson and Spearman over the genes of one table (streaming.py's)."""
  values = np.array(list(genes.values()), np.float64).reshape(-1, 2)
  metrics = RegressionMetrics()
  metrics.update(values[:, 0], values[:, 1])
  return metrics.compute()


def fold_means(runs: list[dict[str, Any]]) -> dict[str, float]:
  """One fold's metrics averaged over its seeds (the runs' eval results)."""
  out = {}
  for key, _ in METRICS + MASK_METRICS:
    values = [r[key] for r in runs if r.get(key) is not None and math.isfinite(r[key])]
    if values:
      out[key] = float(np.mean(values))
  return out


def summarise(per_seed: list[dict[int, Predictions]], per_fold: dict[int, list[dict]]
              ) -> dict[str, Any]:
  """per_seed[s][fold]: seed s's predictions on that fold; per_fold[fold]: its eval results
  per seed. Returns the pooled metrics per seed, the seed-mean prediction's pooled Pearson
  [95% bootstrap over genes] and each fold's seed-mean metrics."""
  pooled = [pool(p) for p in per_seed]
  genes = sorted(pooled[0])
  for seed, p in enumerate(pooled[1:], 1):
    if sorted(p) != genes:
      raise DataFormatError(f"seed {seed} was evaluated on other genes than seed 0 "
                            f"({len(p)} against {len(genes)}): the folds' data sets changed "
                            "between runs")
  target = np.array([pooled[0][g][0] for g in genes])
  mean_prediction = np.mean([[p[g][1] for g in genes] for p in pooled], axis=0)
  r, low, high = statistics.bootstrap_pearson(target, mean_prediction)
  return {"genes": len(genes), "seeds": [regression(p) for p in pooled],
          "seed_mean": {"pearson": r, "low": low, "high": high},
          "folds": {str(k): fold_means(runs) for k, runs in sorted(per_fold.items())}}


def markdown(split: str, folds: Sequence[int], per_fold: dict[str, dict[int, list[dict]]],
             pooled: dict[str, dict[str, Any]]) -> str:
  """results.md of a fold sweep: per-fold rows, pooled out-of-fold rows, mean over folds."""
  with_mask = any("auprc" in r for f in per_fold.values() for runs in f.values() for r in runs)
  rows = {f"{name}, fold {k}": runs for name, f in per_fold.items() for k, runs in f.items()}
  done = {n: s for n, s in pooled.items() if "error" not in s}
  text = [f"{split} split of folds {', '.join(map(str, folds))} (leave-chromosome-out, the "
          "fold CSV's fold_<k>), mean ± std over seeds\n",
          "## Per fold\n", table(rows, with_mask)]
  text += [f"## Pooled out of fold\n\nEvery fold's {split} predictions together, each gene "
           f"predicted by the model whose {split} fold holds it; metrics over all genes at "
           "once, mean ± std over seeds:\n", table({n: s["seeds"] for n, s in done.items()},
                                                  False),
           "\nThe seed-mean prediction over the pooled genes (95% bootstrap interval over "
           "genes):\n", "| Method | genes | Pearson |", "|---|---:|---:|"]
  text += [f"| {n} | {s['genes']} | {s['seed_mean']['pearson']:.4f} "
           f"[{s['seed_mean']['low']:.4f}, {s['seed_mean']['high']:.4f}] |"
           for n, s in done.items()]
  text += [f"\n{n}: not pooled: {s['error']}" for n, s in pooled.items() if "error" in s]
  text += ["\n## Mean ± std over folds\n\nEach fold's mean over seeds, then mean ± std over "
           "the folds:\n", table({n: list(s["folds"].values()) for n, s in done.items()},
                                 with_mask, count="folds")]
  return "\n".join(text)


def prepare_data(dirs: dict[str, int], build_from: pathlib.Path | None) -> None:
  """Checks that every fold's data set (dir -> fold) exists; builds the missing ones from
  the data root `build_from` when given."""
  missing = {d: k for d, k in sorted(dirs.items(), key=lambda item: item[1])
             if not pathlib.Path(d).is_dir()}
  if missing and build_from is None:
    first, fold = next(iter(missing.items()))
    raise MissingInputError(
        f"config.data.dir: no data set for fold(s) {', '.join(map(str, missing.values()))} "
        f"(fold {fold}: {first}); build each with `seq2exp build-data --fold <k>` (fold 11's "
        "is named without _fold11) or give --build-from DATA_ROOT to build them here")
  for path, fold in missing.items():
    build_fold(pathlib.Path(path), fold, build_from)


def build_fold(path: pathlib.Path, fold: int, data_root: pathlib.Path) -> None:
  """Builds fold `fold`'s data set at `path` = <tfds dir>/geneexp/<name>/1.0.0, the cell
  type, window and target read from <name> (`<cell>_<window>_fold<k>[_rna]`)."""
  # pylint: disable=import-outside-toplevel
  from data_pipeline import tfds_builder
  from data_pipeline.commands import build_data
  shape = "<tfds dir>/geneexp/<cell>_<window>_fold<k>[_rna]/1.0.0"
  if (path.name != str(tfds_builder.GeneExp.VERSION)
      or path.parent.parent.name != tfds_builder.GeneExp.name):
    raise ConfigError(f"--build-from: cannot build {path}: a data set's path is {shape}")
  config = tfds_builder.config_from_name(path.parent.name, None)
  if str(config.fold) != str(fold):
    raise ConfigError(f"--build-from: {path} is fold {fold}'s data set but its name says "
                      f"fold {config.fold}; name them {shape} with {{fold}} for <k>")
  print(f"== building the data set of fold {fold}: {path}", flush=True)
  build_data.build(data_root, path.parents[2], cell_type=config.cell_type,
                   window=config.window, fold=fold, target=config.target,
                   name=path.parent.name)


def ablate_folds(names: Sequence[str], seeds: int, folds: Sequence[int], root: pathlib.Path,
                 variant: str | None, overrides: Sequence[str] = (), split: str = "test",
                 build_from: pathlib.Path | None = None, run: RunFn = run_one
                 ) -> tuple[dict, str]:
  """Runs every config x fold x seed (`run`, default driver.run_one) and writes
  root/results.md and results.json; returns (the results, the Markdown)."""
  labels = {name: name.partition(":")[0] for name in names}
  configs = {(name, fold, seed): resolve_config(name, variant, seed, root, overrides, fold)
             for name in names for fold in folds for seed in range(seeds)}
  prepare_data({c.data.dir: fold for (_, fold, _), c in configs.items()}, build_from)
  per_fold: dict[str, dict[int, list[dict]]] = {}
  for (name, fold, seed), config in configs.items():
    label = labels[name]
    print(f"== {label} fold {fold} seed {seed} ({config.variant}, {config.train.steps} "
          "steps)", flush=True)
    result = run(config, run_dir(root, label, seed, fold), split)
    per_fold.setdefault(label, {}).setdefault(fold, []).append(dict(result, fold=fold))
  pooled: dict[str, dict[str, Any]] = {}
  for label, by_fold in per_fold.items():
    per_seed = [{k: read_predictions(predictions_file(run_dir(root, label, s, k), split))
                 for k in folds} for s in range(seeds)]
    try:
      pooled[label] = summarise(per_seed, by_fold)
    except OverlappingFolds as e:
      pooled[label] = {"error": f"{e}: pooled metrics need each gene in one fold's split"}
  results = {"split": split, "folds": list(folds),
             "per_fold": {n: {str(k): runs for k, runs in f.items()}
                          for n, f in per_fold.items()},
             "pooled": pooled}
  text = markdown(split, folds, per_fold, pooled)
  root.mkdir(parents=True, exist_ok=True)
  with io.file_set(root) as out:  # the tables and their JSON as one set
    io.write_text(out / "results.md", text)
    io.write_json(out / "results.json", results)
  return results, text
