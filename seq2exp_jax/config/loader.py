"""Experiment configs: the shared defaults, loading `experiments/<name>.py[:variant]` files,
and `--config.a.b=value` overrides.

An experiment file defines `get_config(arg: str | None) -> ml_collections.ConfigDict`; `arg`
is the variant after the colon (`paper` when absent, `smoke` for tests, `synthetic` for the
CPU demo). The config has these sections:

  model:  name ("seq2exp" | "baseline") and `args`, the model's constructor arguments.
  mask:   source of the predictor's mask for fixed-mask runs: "learned" (the generator),
          "peaks" (MACS3 DNase peaks stored in the data set) or "generator_top" (the
          top `top_fraction` of a trained Seq2Exp's soft mask, from `generator_workdir`).
  data:   dir (prepared data set, `.../geneexp/<config>/1.0.0`), window (a central crop of
          the stored window, or None for all of it), splits.
  loss:   kl_weight, continuity_weight.
  optim:  AdamW and its warm-up + cosine schedule (SPEC §2).
  train:  seed, steps, batch size, dtype, logging / validation / checkpoint cadence.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import pathlib
from typing import Any

import ml_collections

VARIANTS = ("paper", "smoke", "synthetic")


def base_config() -> ml_collections.ConfigDict:
  """Defaults shared by every experiment: the paper's training recipe (SPEC §2)."""
  c = ml_collections.ConfigDict()
  c.experiment = ""
  c.variant = "paper"
  c.model = ml_collections.ConfigDict({"name": "seq2exp", "args": {}})
  c.mask = ml_collections.ConfigDict({
      "source": "learned", "generator_workdir": "", "top_fraction": 0.1})
  c.data = ml_collections.ConfigDict({
      "dir": "tfds_data/geneexp/k562_200000/1.0.0", "window": ml_collections.FieldReference(
          None, field_type=int), "train_split": "train", "eval_split": "valid",
      "num_threads": 2, "prefetch": 2})
  c.loss = ml_collections.ConfigDict({"kl_weight": 0.01, "continuity_weight": 0.0})
  c.optim = ml_collections.ConfigDict({
      "lr": 5e-4, "b1": 0.9, "b2": 0.95, "weight_decay": 1e-6, "grad_clip": 1.0,
      "warmup_fraction": 0.1, "init_lr": 1e-5, "end_lr": 1e-4})
  c.train = ml_collections.ConfigDict({
      "seed": 0, "steps": 50_000, "batch_size": 8, "eval_batch_size": 8,
      "dtype": "bfloat16", "remat": True, "shard_params": False,
      "log_every": 50, "eval_every": 2_000, "checkpoint_every": 1_000,
      "keep_checkpoints": 2, "sync_every": 8, "progress": True})
  return c


# Model sizes per variant. Baselines get 2 * layers blocks: the depth of Seq2Exp's
# generator + predictor, so no model wins by being deeper.
SIZES = {
    "paper": dict(d_model=128, layers=4, d_state=16, center_len=2000),
    "synthetic": dict(d_model=16, layers=1, d_state=8, center_len=2000),
    "smoke": dict(d_model=16, layers=1, d_state=4, center_len=128),
}


def size(variant: str | None) -> dict[str, int]:
  variant = variant or "paper"
  if variant not in SIZES:
    raise ValueError(f"unknown config variant {variant!r}: expected one of {VARIANTS}")
  return SIZES[variant]


def seq2exp_args(variant: str | None, window: int = 200_000) -> dict[str, Any]:
  """Seq2Exp constructor arguments of the published soft run, sized for `variant`."""
  s = size(variant)
  return dict(d_model=s["d_model"], n_gen_layer=s["layers"],
              n_enc_layer=s["layers"], d_state=s["d_state"], center_len=s["center_len"], prior_scale_factor=10.0, beta_min=1.0,
              marginal_mean=0.1, marginal_scale=10.0, hard=False, seq_range=window)


def baseline_args(variant: str | None, backbone: str, use_signals: bool) -> dict[str, Any]:
  """Backbone + head baseline arguments, sized for `variant`."""
  s = size(variant)
  return dict(backbone=backbone, use_signals=use_signals, d_model=s["d_model"],
              n_layer=2 * s["layers"], d_state=s["d_state"], center_len=s["center_len"])


def experiment(variant: str | None, model_name: str, args: dict[str, Any],
               **sections: dict[str, Any]) -> ml_collections.ConfigDict:
  """base_config() with the model, the variant's data and cadence, and section updates
  (e.g. mask={"source": "peaks"}, loss={"kl_weight": 0.0})."""
  c = base_config()
  c.model.name = model_name
  c.model.args = ml_collections.ConfigDict(args)
  apply_variant(c, variant)
  for name, values in sections.items():
    c[name].update(values)
  return c


def apply_variant(c: ml_collections.ConfigDict, variant: str | None
                  ) -> ml_collections.ConfigDict:
  """Sets the data and training cadence of `variant`: paper (as is), smoke (CI: seconds) or
  synthetic (the CPU demo on `seq2exp synth --preset small`). Model sizes: SIZES."""
  variant = variant or "paper"
  if variant not in VARIANTS:
    raise ValueError(f"unknown config variant {variant!r}: expected one of {VARIANTS}")
  c.variant = variant
  if variant == "smoke":
    c.data.dir = ""  # tests point it at their tiny data set
    c.data.window = 1024
    c.train.update(steps=4, batch_size=8, eval_batch_size=8, dtype="float32", remat=False,
                   log_every=2, eval_every=4, checkpoint_every=2, progress=False)
  elif variant == "synthetic":
    c.data.dir = "runs/demo/tfds/geneexp/k562_16384/1.0.0"  # what `make demo` builds
    c.data.window = None
    # Sized so `make demo` trains three models within its 20 minutes on 2 CPU cores.
    c.train.update(steps=200, batch_size=8, eval_batch_size=16, dtype="float32",
                   remat=False, log_every=20, eval_every=50, checkpoint_every=100)
    c.optim.update(lr=2e-3, init_lr=1e-4, end_lr=1e-4)
  return c


def load_config(spec: str) -> ml_collections.ConfigDict:
  """`path/to/experiment.py[:variant]` -> its config."""
  path, _, arg = str(spec).partition(":")
  file = pathlib.Path(path)
  if not file.is_file():
    raise FileNotFoundError(f"config file {file} not found (expected "
                            "experiments/<name>.py[:variant])")
  module_spec = importlib.util.spec_from_file_location(f"experiment_{file.stem}", file)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise AttributeError(f"{file}: no get_config(arg) function")
  config = module.get_config(arg or None)
  if not isinstance(config, ml_collections.ConfigDict):
    raise TypeError(f"{file}: get_config returned {type(config).__name__}, expected "
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
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def apply_overrides(config: ml_collections.ConfigDict, overrides: list[str]
                    ) -> ml_collections.ConfigDict:
  """Applies `a.b=value` strings (the `--config.` prefix already removed)."""
  for item in overrides:
    key, sep, text = item.partition("=")
    if not sep:
      raise ValueError(f"config override {item!r}: expected field=value")
    node = config
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
      if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
        raise KeyError(f"config override {item!r}: no field "
                       f"{'.'.join(parts[:depth + 1])!r}")
      node = node[part]
    last = parts[-1]
    # model.args holds constructor arguments: any of the model's may be added.
    if not isinstance(node, (ml_collections.ConfigDict, dict)) or (
        last not in node and not key.startswith("model.args.")):
      raise KeyError(f"config override {item!r}: no field {key!r}")
    current = node[last] if last in node else None
    try:
      node[last] = _parse_value(text, current)
    except (ValueError, TypeError) as e:
      raise ValueError(f"config override {item!r}: {e}") from e
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
