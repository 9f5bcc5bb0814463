"""Range checks of a config's values, run before a command does any work, so a bad value
is one line naming the field (`train.batch_size = 0: expected an integer >= 1`), never a
ZeroDivisionError half-way through a run. What a field means is in config/loader.py; the
model's own arguments are checked by the modules that take them."""

from __future__ import annotations

import math
from typing import Any

import ml_collections

from data_pipeline.errors import ConfigError

POSITIVE_INTS = ("train.steps", "train.batch_size", "train.eval_batch_size", "train.log_every",
                 "train.eval_every", "train.checkpoint_every", "train.sync_every",
                 "train.grad_accum_steps", "data.num_threads")
NON_NEGATIVE_INTS = ("data.prefetch", "train.seed")
POSITIVE_FLOATS = ("optim.lr",)
NON_NEGATIVE_FLOATS = ("optim.init_lr", "optim.end_lr", "optim.weight_decay",
                       "optim.grad_clip", "loss.kl_weight", "loss.continuity_weight")


def _get(config: ml_collections.ConfigDict, field: str) -> Any:
  node = config
  for part in field.split("."):
    if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
      raise ConfigError(f"{field}: missing from the config (an experiment file must set it, "
                        "usually through experiments/common.py)")
    node = node[part]
  return node


def _is_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _batch_split(config: ml_collections.ConfigDict, data_devices: int) -> list[str]:
  """With grad_accum_steps K > 1 the optimizer batch must split into K equal micro-batches
  on every device (see train/step.py); K = 1 leaves the batch's split over the devices to
  the loader's own check."""
  batch, accum = _get(config, "train.batch_size"), _get(config, "train.grad_accum_steps")
  if not (_is_int(batch) and _is_int(accum)) or batch < 1 or accum <= 1:
    return []  # K = 1, or already reported as out of range
  if batch % (accum * data_devices) == 0:
    return []
  return [f"train.batch_size = {batch}, train.grad_accum_steps = {accum}: expected the "
          f"batch to be a multiple of grad_accum_steps x the {data_devices} devices of the "
          f"mesh = {accum * data_devices} (each device's rows split into {accum} equal "
          "micro-batches)"]


HARD_CAPACITIES = ("auto", "window")


def hard_capacity(value: Any) -> str | int:
  """packing.capacity (train/capacity.py) -> "auto", "window" or a positive int (a
  command line gives a string: "4096" is the int); None is "window"."""
  if value is None:
    return "window"
  if isinstance(value, str) and value.strip().isdigit():
    value = int(value)
  if value in HARD_CAPACITIES or (_is_int(value) and value >= 1):
    return value
  raise ConfigError(f"packing.capacity = {value!r}: expected 'auto', 'window' or a "
                    "number of positions >= 1")


def _hard_capacity(config: ml_collections.ConfigDict) -> list[str]:
  """A packing capacity below the window needs a packed model whose numbers do not depend
  on it (model.inert_padding)."""
  if "capacity" not in config.get("packing", {}):
    return []
  try:
    value = hard_capacity(config.packing.capacity)
  except ConfigError as e:
    return [str(e)]
  model = config.model
  if value != "window" and not (model.get("pack_selected") and model.get("inert_padding")):
    return [f"packing.capacity = {value!r} packs the predictor below the window: it needs "
            "model.pack_selected=True with model.inert_padding=True (else the numbers depend "
            "on the capacity); use 'window'"]
  return []


def check_config(config: ml_collections.ConfigDict, data_devices: int | None = None
                 ) -> ml_collections.ConfigDict:
  """`config` if every checked field is in range, else ConfigError naming them all.
  `data_devices`: the size of the mesh's `data` axis a run trains on; with it, a
  train.grad_accum_steps > 1 needs train.batch_size to be a multiple of grad_accum_steps x
  data_devices (None: not checked)."""
  problems = []
  for field in POSITIVE_INTS + NON_NEGATIVE_INTS:
    value, low = _get(config, field), 1 if field in POSITIVE_INTS else 0
    if not _is_int(value) or value < low:
      problems.append(f"{field} = {value!r}: expected an integer >= {low}")
  for field in POSITIVE_FLOATS + NON_NEGATIVE_FLOATS:
    value = _get(config, field)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (field in POSITIVE_FLOATS and value == 0):
      bound = "> 0" if field in POSITIVE_FLOATS else ">= 0"
      problems.append(f"{field} = {value!r}: expected a finite number {bound}")
  keep = _get(config, "train.keep_checkpoints")
  if keep is not None and (not _is_int(keep) or keep < 1):
    problems.append(f"train.keep_checkpoints = {keep!r}: expected an integer >= 1 or None "
                    "(keep all)")
  window = _get(config, "data.window")
  if window is not None and (not _is_int(window) or window < 2 or window % 2):
    problems.append(f"data.window = {window!r}: expected an even number of bp >= 2, or None "
                    "(the stored window)")
  fraction = _get(config, "mask.top_fraction")
  if not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
    problems.append(f"mask.top_fraction = {fraction!r}: expected 0 < fraction <= 1")
  problems += _hard_capacity(config)
  if data_devices is not None:
    problems += _batch_split(config, data_devices)
  if problems:
    raise ConfigError("; ".join(problems))
  return config
