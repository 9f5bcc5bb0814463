"""Experiment configs: loading `experiments/<name>.py[:variant]` files, `--config.a.b=value`
overrides, and the JSON form a workdir keeps.

An experiment file defines `get_config(arg: str | None) -> ml_collections.ConfigDict`; `arg`
is the variant after the colon (`paper` when absent, `smoke` for tests, `synthetic` for the
CPU demo). Experiment files are loaded as modules of their folder, so one can import a
sibling with `from . import common` (experiments/common.py holds the shared recipe). A
config has these sections:

  model:  name (a key of train/task.py MODELS: "seq2exp", "baseline", "epinformer", ...),
          backbone {kind, ...} and the model's other constructor arguments (Seq2Exp's
          `bottleneck` is a dict of BetaMask's, or None).
  mask:   where the predictor's mask comes from: "learned" (the generator), "peaks" (MACS3
          DNase peaks stored in the data set) or "generator_top" (the top `top_fraction` of
          a trained Seq2Exp's soft mask, from `generator_workdir`).
  data:   dir (prepared data set, `.../geneexp/<config>/1.0.0`), window (the central crop
          of the stored window the model reads, or None for all of it), splits, reading.
  loss:   kl_weight, continuity_weight.
  optim:  AdamW and its warm-up + cosine schedule.
  train:  seed, steps, batch size, compute dtype and remat, logging / validation /
          checkpoint cadence. batch_size is the optimizer's batch; grad_accum_steps K
          (default 1) computes each step's gradient as K micro-batches of batch_size / K
          one after another (the memory of one micro-batch, K sequential passes; batch_size
          a multiple of K x devices; see train/step.py).
  packing: capacity of the hard variant's packed predictor: "window" (L), a number of
          positions, or "auto" (a bucket of L chosen from recent steps' selected counts;
          train/capacity.py).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import pathlib
import sys
import types
from typing import Any

import ml_collections

from data_pipeline.errors import ConfigError, MissingInputError


def _experiments_package(folder: pathlib.Path) -> str:
  """A package named for `folder` (registered once), so its files import each other."""
  name = "seq2exp_experiments_" + hashlib.sha1(str(folder).encode()).hexdigest()[:12]
  if name not in sys.modules:
    package = types.ModuleType(name)
    package.__path__ = [str(folder)]
    sys.modules[name] = package
  return name


def load_config(spec: str) -> ml_collections.ConfigDict:
  """`path/to/experiment.py[:variant]` -> its config."""
  path, _, arg = str(spec).partition(":")
  file = pathlib.Path(path).resolve()
  if not file.is_file():
    raise MissingInputError(f"config file {path} not found (expected "
                            "experiments/<name>.py[:variant])")
  package = _experiments_package(file.parent)
  module_spec = importlib.util.spec_from_file_location(f"{package}.{file.stem}", file)
  module = importlib.util.module_from_spec(module_spec)
  sys.modules[module_spec.name] = module
  module_spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"{file}: no get_config(arg) function")
  config = module.get_config(arg or None)
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f"{file}: get_config returned {type(config).__name__}, expected "
                    "ml_collections.ConfigDict")
  config.experiment = config.experiment or file.stem
  return config


def _parse_value(text: str, current: Any) -> Any:
  """A command-line value, typed like the field it replaces."""
  if isinstance(current, bool):
    if text.lower() in ("true", "1", "yes"):
      return True
    if text.lower() in ("false", "0", "no"):
      return False
    raise ValueError(f"expected true/false, got {text!r}")
  if isinstance(current, str):
    return text
  if isinstance(current, int):
    return int(text.replace("_", ""))
  if isinstance(current, float):
    return float(text)
  if text.lower() in ("true", "false"):  # a field the experiment file left at its default
    return text.lower() == "true"
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def apply_overrides(config: ml_collections.ConfigDict, overrides: list[str]
                    ) -> ml_collections.ConfigDict:
  """Applies `a.b=value` strings (the `--config.` prefix already removed).

  Fields must exist, except under `model.` (constructor arguments an experiment file left
  at their defaults may be added; `build_model` refuses any the model does not take).
  """
  for item in overrides:
    key, sep, text = item.partition("=")
    if not sep:
      raise ConfigError(f"config override {item!r}: expected field=value")
    node = config
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
      if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
        raise ConfigError(f"config override {item!r}: no field "
                       f"{'.'.join(parts[:depth + 1])!r}")
      node = node[part]
    last = parts[-1]
    if not isinstance(node, (ml_collections.ConfigDict, dict)) or (
        last not in node and not key.startswith("model.")):
      raise ConfigError(f"config override {item!r}: no field {key!r}")
    current = node[last] if last in node else None
    try:
      node[last] = _parse_value(text, current)
    except (ValueError, TypeError) as e:
      raise ConfigError(f"config override {item!r}: {e}") from e
  return config


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
  """Separates `--config.a.b=value` arguments from the rest of a command line."""
  rest, overrides = [], []
  for arg in argv:
    if arg.startswith("--config.") and "=" in arg:
      overrides.append(arg[len("--config."):])
    else:
      rest.append(arg)
  return rest, overrides


def to_json(config: ml_collections.ConfigDict) -> str:
  return json.dumps(json.loads(config.to_json()), indent=2, sort_keys=True)


def from_json(text: str) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(json.loads(text))
