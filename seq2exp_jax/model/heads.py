"""The expression head every model shares.

Pooled promoter embedding (D) -> concat mRNA features (F) -> MLP (D + F -> D -> D -> 1,
ReLU). Params `pToExpr/dense_{0,1,2}` (PyTorch `pToExpr.{0,2,4}`). `use_rna_feat=False`
(the original's `useRNAFeat=False`) reads the pooled embedding alone (D -> D -> D -> 1).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jaxtyping import Array, Float

from seq2exp_jax.model.init import torch_linear_init

Dtype = Any


class ExpressionHead(nn.Module):
  """MLP from the pooled promoter embedding and mRNA features to log expression."""

  d_model: int
  dtype: Dtype = jnp.float32
  use_rna_feat: bool = True

  @nn.compact
  def __call__(self, pooled: Float[Array, "B D"], rna_feat: Float[Array, "B F"]
               ) -> Float[Array, "B"]:
    """Returns the prediction, float32. Sows the MLP's input as intermediate `p_embed`."""
    x = pooled.astype(jnp.float32)
    if self.use_rna_feat:
      x = jnp.concatenate([x, rna_feat.astype(jnp.float32)], axis=-1)
    self.sow("intermediates", "p_embed", x)
    dense = lambda n, name: nn.Dense(n, dtype=self.dtype, kernel_init=torch_linear_init(),  # noqa: E731
                                     bias_init=nn.initializers.zeros, name=name)
    x = nn.relu(dense(self.d_model, "dense_0")(x))
    x = nn.relu(dense(self.d_model, "dense_1")(x))
    return dense(1, "dense_2")(x)[:, 0].astype(jnp.float32)
