"""Loss primitives and the mask's size, small pure functions (float32)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from seq2exp_jax.model.promoter import promoter_positions


def smooth_l1(prediction: Float[Array, "*B"], target: Float[Array, "*B"], beta: float = 1.0
              ) -> Float[Array, ""]:
  """Mean Huber loss (PyTorch smooth_l1_loss, beta 1)."""
  diff = jnp.abs(prediction.astype(jnp.float32) - target.astype(jnp.float32))
  return jnp.mean(jnp.where(diff < beta, 0.5 * diff ** 2 / beta, diff - 0.5 * beta))


def continuity_loss(mask: Float[Array, "B L"]) -> Float[Array, ""]:
  """mean_b sum_t |m_t - m_{t-1}| / (L + 1) (the original pads with the edge values)."""
  length = mask.shape[1]
  return jnp.mean(jnp.sum(jnp.abs(jnp.diff(mask, axis=1)), axis=1) / (length + 1))


def mask_ratio(mask: Float[Array, "B L"], center_len: int) -> Float[Array, ""]:
  """Mean mask value outside the promoter (which every mask forces to 1): the share of the
  window the predictor reads. Evaluation's `mask_ratio` is the same quantity."""
  outside = ~promoter_positions(mask.shape[1], center_len)
  return jnp.mean(mask.astype(jnp.float32)[:, outside])
