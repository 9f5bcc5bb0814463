"""The ablation driver of `ablate` and `demo`: train one config for one seed in its own
workdir (resumable; a finished run is skipped), evaluate its best checkpoint on the test
split, and summarise runs as the paper's Table 1 (`table.py`)."""

from __future__ import annotations

import json
import pathlib
from typing import Any, Sequence

import ml_collections

from data_pipeline import io
from seq2exp_jax.ablation.table import table
from seq2exp_jax.config import loader as configs
from seq2exp_jax.evaluation.evaluate import eval_loader, evaluate
from seq2exp_jax.train import checkpoint
from seq2exp_jax.train.step import make_eval_step
from seq2exp_jax.train.task import build_task
from seq2exp_jax.train.trainer import load_generator, train_and_evaluate


EXPERIMENTS = pathlib.Path(__file__).resolve().parents[2] / "experiments"


def eval_file(workdir: pathlib.Path, split: str) -> pathlib.Path:
  return workdir / f"eval_{split}.json"


def evaluate_workdir(workdir: str | pathlib.Path, split: str = "test",
                     data_dir: str | None = None, which: str = "best",
                     batch_size: int | None = None, extra: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
  """Metrics of `workdir`'s `which` checkpoint on `split`, with `extra` fields; also written
  to eval_<split>.json."""
  workdir = pathlib.Path(workdir)
  config, params, step = checkpoint.load_run(workdir, which)
  task = build_task(config, load_generator)
  dc = config.data
  loader = eval_loader(data_dir or dc.dir, split, batch_size or config.train.eval_batch_size,
                       window=dc.window, num_threads=dc.num_threads, prefetch=dc.prefetch)
  metrics = evaluate(make_eval_step(task), params, loader, task.center_len)
  result = dict(metrics, step=step, checkpoint=which, split=split,
                data=str(data_dir or config.data.dir), **(extra or {}))
  io.write_json(eval_file(workdir, split), result)
  return result


def run_one(config: ml_collections.ConfigDict, workdir: str | pathlib.Path,
            split: str = "test") -> dict[str, Any]:
  """Trains `config` in `workdir` unless already finished, then evaluates on `split`."""
  workdir = pathlib.Path(workdir)
  done = eval_file(workdir, split)
  if done.is_file():
    result = json.loads(done.read_text())
    if result.get("trained_steps") == config.train.steps:
      return result
  train_and_evaluate(config, workdir)
  return evaluate_workdir(workdir, split, extra={"trained_steps": int(config.train.steps)})


def resolve_config(name: str, variant: str | None, seed: int, root: pathlib.Path,
                   overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """The config of experiment `name` (a file under experiments/ or a path) for `seed`."""
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
  if config.mask.source == "generator_top" and not config.mask.generator_workdir:
    config.mask.generator_workdir = str(root / "seq2exp_soft" / f"seed_{seed}")
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
      results.setdefault(label, []).append(run_one(config, root / label / f"seed_{seed}",
                                                   split))
  with_mask = any("auprc" in r for runs in results.values() for r in runs)
  text = table(results, with_mask)
  root.mkdir(parents=True, exist_ok=True)
  with io.file_set(root) as out:  # the table and its JSON as one set
    io.write_text(out / "results.md", f"{split} split, mean ± std over seeds\n\n" + text)
    io.write_json(out / "results.json", results)
  return results, text
