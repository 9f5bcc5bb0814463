"""The paper's optimizer (docs/method.md, "Training"): AdamW with gradient clipping, a
linear warm-up from `init_lr` over the first `warmup_fraction` of the run, then a cosine
decay to `end_lr`."""

from __future__ import annotations

from typing import Any

import jax
import ml_collections
import optax

from data_pipeline.errors import ConfigError

# mamba-ssm flags these `_no_weight_decay` (golden README): the SSM's A_log and D.
NO_WEIGHT_DECAY = ("A_log", "D")


def learning_rate(optim: ml_collections.ConfigDict, steps: int) -> optax.Schedule:
  """step -> learning rate for a run of `steps` steps."""
  warmup = int(round(optim.warmup_fraction * steps))
  if warmup >= steps:
    raise ConfigError(f"optim.warmup_fraction {optim.warmup_fraction}: the warm-up must be "
                     f"shorter than the run ({steps} steps)")
  return optax.warmup_cosine_decay_schedule(
      init_value=optim.init_lr, peak_value=optim.lr, warmup_steps=warmup,
      decay_steps=steps, end_value=optim.end_lr)


def weight_decay_mask(params: Any) -> Any:
  """True for every parameter that gets weight decay (all but A_log and D)."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: getattr(path[-1], "key", None) not in NO_WEIGHT_DECAY, params)


def make_optimizer(optim: ml_collections.ConfigDict, schedule: optax.Schedule
                   ) -> optax.GradientTransformation:
  """Clipping then AdamW following `schedule` (from `learning_rate`)."""
  return optax.chain(
      optax.clip_by_global_norm(optim.grad_clip),
      optax.adamw(schedule, b1=optim.b1, b2=optim.b2,
                  weight_decay=optim.weight_decay, mask=weight_decay_mask))
