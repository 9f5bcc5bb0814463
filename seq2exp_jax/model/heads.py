"""The expression head every model shares, and the regression loss.

Centre `center_len` positions (the promoter) -> mean -> concat mRNA features -> MLP
(D + F -> D -> D -> 1, ReLU). Params `pToExpr/dense_{0,1,2}` (PyTorch `pToExpr.{0,2,4}`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from seq2exp_jax.model.mamba import torch_linear_init

Dtype = Any


def centre_start(length: int, center_len: int) -> int:
  """First index of the centred promoter window, (L - center_len) // 2."""
  if center_len > length:
    raise ValueError(f"center_len {center_len} is longer than the window ({length})")
  return (length - center_len) // 2


def centre_mean(hidden, center_len: int):
  """hidden: (B, L, D) -> mean over the centre `center_len` positions, (B, D) float32."""
  c0 = centre_start(hidden.shape[1], center_len)
  return jnp.mean(hidden[:, c0:c0 + center_len].astype(jnp.float32), axis=1)


class ExpressionHead(nn.Module):
  """MLP from the pooled promoter embedding and mRNA features to log expression."""

  d_model: int
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, pooled, rna_feat):
    """pooled: (B, D); rna_feat: (B, F) -> prediction (B, 1) float32."""
    x = jnp.concatenate([pooled.astype(jnp.float32), rna_feat.astype(jnp.float32)], axis=-1)
    dense = lambda n, name: nn.Dense(n, dtype=self.dtype, kernel_init=torch_linear_init(),  # noqa: E731
                                     bias_init=nn.initializers.zeros, name=name)
    x = nn.relu(dense(self.d_model, "dense_0")(x))
    x = nn.relu(dense(self.d_model, "dense_1")(x))
    return dense(1, "dense_2")(x).astype(jnp.float32)


def smooth_l1(prediction, target, beta: float = 1.0):
  """Mean Huber loss (PyTorch smooth_l1_loss, beta 1). prediction, target: (B, 1) or (B,)."""
  diff = jnp.abs(prediction.astype(jnp.float32) - target.astype(jnp.float32))
  return jnp.mean(jnp.where(diff < beta, 0.5 * diff ** 2 / beta, diff - 0.5 * beta))


def embedding_dense(features: int, dtype: Dtype, name: str) -> nn.Dense:
  """An input Linear as the original's (kaiming-uniform weight, bias zeroed by post_init)."""
  return nn.Dense(features, dtype=dtype, kernel_init=torch_linear_init(),
                  bias_init=nn.initializers.zeros, name=name)

