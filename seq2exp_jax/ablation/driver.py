"""The ablation driver of `ablate` and `demo`: train one config for one seed in its own
workdir (resumable; a finished run is skipped), evaluate its best checkpoint on the test
split (metrics in eval_<split>.json, every gene's prediction in <split>_predictions.csv),
and summarise runs as the paper's Table 1 (`table.py`; over folds: `folds.py`)."""

from __future__ import annotations

import csv
import json
import pathlib
from typing import Any, Callable, Sequence

import ml_collections

from data_pipeline import io
from data_pipeline.errors import ConfigError
from seq2exp_jax.ablation.table import table
from seq2exp_jax.config import loader as configs
from seq2exp_jax.evaluation.evaluate import eval_loader, evaluate
from seq2exp_jax.train import checkpoint
from seq2exp_jax.train.step import make_eval_step
from seq2exp_jax.train.task import build_task
from seq2exp_jax.train.trainer import load_generator, train_and_evaluate


EXPERIMENTS = pathlib.Path(__file__).resolve().parents[2] / "experiments"
FOLD_FIELD = "{fold}"  # in config.data.dir: replaced by the fold of the run (`ablate --folds`)
PREDICTION_COLUMNS = ("ensid", "chrom", "tss", "target", "prediction")


def eval_file(workdir: pathlib.Path, split: str) -> pathlib.Path:
  return workdir / f"eval_{split}.json"


def predictions_file(workdir: pathlib.Path, split: str) -> pathlib.Path:
  """Every gene of `split` with its target and prediction (PREDICTION_COLUMNS)."""
  return workdir / f"{split}_predictions.csv"


def gene_rows(host: dict[str, Any]) -> list[tuple]:
  """The PREDICTION_COLUMNS of each valid row of a host batch (evaluation.batches)."""
  return [(str(host["ensid"][i]), str(host["chrom"][i]), int(host["tss"][i]),
           f"{host['target'][i]:.9g}", f"{host['prediction'][i]:.9g}")
          for i in range(len(host["valid"])) if host["valid"][i]]


def write_predictions(path: pathlib.Path, rows: list[tuple]) -> None:
  with io.atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(PREDICTION_COLUMNS)
    writer.writerows(rows)


def evaluate_params(config: ml_collections.ConfigDict, params: Any, split: str = "test",
                    data_dir: str | None = None, batch_size: int | None = None,
                    on_batch: Callable[[dict[str, Any]], None] | None = None
                    ) -> dict[str, Any]:
  """Metrics of `config`'s model with `params` on `split` of `data_dir` (default: the
  config's data.dir), with the split and the data set named; `on_batch` sees every host
  batch."""
  task = build_task(config, load_generator)
  dc = config.data
  loader = eval_loader(data_dir or dc.dir, split, batch_size or config.train.eval_batch_size,
                       window=dc.window, num_threads=dc.num_threads, prefetch=dc.prefetch)
  metrics = evaluate(make_eval_step(task), params, loader, task.center_len, on_batch)
  return dict(metrics, split=split, data=str(data_dir or dc.dir))


def evaluate_workdir(workdir: str | pathlib.Path, split: str = "test",
                     data_dir: str | None = None, which: str = "best",
                     batch_size: int | None = None, extra: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
  """Metrics of `workdir`'s `which` checkpoint on `split`, with `extra` fields; also written
  to eval_<split>.json, after every gene's prediction in <split>_predictions.csv."""
  workdir = pathlib.Path(workdir)
  config, params, step = checkpoint.load_run(workdir, which)
  rows: list[tuple] = []
  result = dict(evaluate_params(config, params, split, data_dir, batch_size,
                                lambda host: rows.extend(gene_rows(host))),
                step=step, checkpoint=which, **(extra or {}))
  write_predictions(predictions_file(workdir, split), rows)
  io.write_json(eval_file(workdir, split), result)  # last: it marks the run evaluated
  return result


def run_one(config: ml_collections.ConfigDict, workdir: str | pathlib.Path,
            split: str = "test") -> dict[str, Any]:
  """Trains `config` in `workdir` unless already finished, then evaluates on `split` (a
  finished run evaluated before the predictions file existed is evaluated again only)."""
  workdir = pathlib.Path(workdir)
  done = eval_file(workdir, split)
  extra = {"trained_steps": int(config.train.steps)}
  if done.is_file():
    result = json.loads(done.read_text())
    if result.get("trained_steps") == config.train.steps:
      if predictions_file(workdir, split).is_file():
        return result
      return evaluate_workdir(workdir, split, extra=extra)
  train_and_evaluate(config, workdir)
  return evaluate_workdir(workdir, split, extra=extra)


def run_dir(root: pathlib.Path, label: str, seed: int, fold: int | None = None
            ) -> pathlib.Path:
  """root/<config>/seed_<s>, or root/<config>/fold_<k>/seed_<s> for one fold's run."""
  return root / label / ("" if fold is None else f"fold_{fold}") / f"seed_{seed}"


def resolve_config(name: str, variant: str | None, seed: int, root: pathlib.Path,
                   overrides: Sequence[str] = (), fold: int | None = None
                   ) -> ml_collections.ConfigDict:
  """The config of experiment `name` (a file under experiments/ or a path) for `seed`, and
  for `fold` its data set: data.dir with FOLD_FIELD replaced by the fold."""
  spec, _, inline_variant = name.partition(":")
  path = pathlib.Path(spec)
  if not path.suffix:  # a name: experiments/ here, else the one next to this package
    path = pathlib.Path("experiments") / f"{spec}.py"
    if not path.is_file():
      path = EXPERIMENTS / f"{spec}.py"
  variant = inline_variant or variant
  config = configs.load_config(f"{path}:{variant}" if variant else str(path))
  configs.apply_overrides(config, list(overrides))
  config.train.seed = seed
  if (FOLD_FIELD in config.data.dir) != (fold is not None):
    raise ConfigError(
        f"config.data.dir {config.data.dir!r}: " + (
            f"{FOLD_FIELD} is replaced by the fold only with ablate --folds" if fold is None
            else f"with --folds every fold trains on its own data set; put {FOLD_FIELD} in "
                 "it, e.g. tfds/geneexp/k562_16384_fold{fold}/1.0.0"))
  if fold is not None:
    config.data.dir = config.data.dir.replace(FOLD_FIELD, str(fold))
  if config.mask.source == "generator_top" and not config.mask.generator_workdir:
    config.mask.generator_workdir = str(run_dir(root, "seq2exp_soft", seed, fold))
  return config


def ablate(names: Sequence[str], seeds: int, root: pathlib.Path, variant: str | None,
           overrides: Sequence[str] = (), split: str = "test") -> tuple[dict, str]:
  """Runs everything; returns ({name: [result per seed]}, the Markdown table)."""
  results: dict[str, list] = {}
  for name in names:
    label = name.partition(":")[0]
    for seed in range(seeds):
      config = resolve_config(name, variant, seed, root, overrides)
      print(f"== {label} seed {seed} ({config.variant}, {config.train.steps} steps)",
            flush=True)
      results.setdefault(label, []).append(run_one(config, run_dir(root, label, seed), split))
  with_mask = any("auprc" in r for runs in results.values() for r in runs)
  text = table(results, with_mask)
  root.mkdir(parents=True, exist_ok=True)
  with io.file_set(root) as out:  # the table and its JSON as one set
    io.write_text(out / "results.md", f"{split} split, mean ± std over seeds\n\n" + text)
    io.write_json(out / "results.json", results)
  return results, text
