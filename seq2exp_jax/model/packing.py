"""The hard run's predictor input: the selected positions of each window moved to the
front, in order, padded to a static capacity P (the original pads to the batch's longest
selection, which jit cannot do; `exact_capacity` in torch_port reproduces it)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int


def pack_selected(rows: Float[Array, "B L D"], selected: Bool[Array, "B L"], capacity: int
                  ) -> tuple[Float[Array, "B P D"], Int[Array, "B"]]:
  """Move the selected rows of each sample to the front, in order, zero-padded.

  Returns the packed rows (P = capacity) and the number of selected rows that did not fit.
  """
  dest = jnp.cumsum(selected, axis=1) - 1  # (B, L)
  dest = jnp.where(selected & (dest < capacity), dest, capacity)  # out of range -> dropped

  def one(r, d):
    return jnp.zeros((capacity, r.shape[-1]), r.dtype).at[d].set(r, mode="drop")

  count = jnp.sum(selected, axis=1, dtype=jnp.int32)
  return jax.vmap(one)(rows, dest), jnp.maximum(count - capacity, 0)


def packed_promoter_mean(hidden: Float[Array, "B P D"], mask: Float[Array, "B L"],
                         center_len: int) -> Float[Array, "B D"]:
  """Mean over the promoter rows of a packed sequence, float32.

  The promoter starts at sum(mask[:, :L/2]) - center_len/2 in packed coordinates (the
  original's index arithmetic, which assumes even L and center_len); mask holds exact 1.0 at
  selected positions.
  """
  half = mask.shape[1] // 2
  start = (jnp.sum(mask[:, :half] == 1.0, axis=1) - center_len // 2).astype(jnp.int32)

  def one(h, s):
    return jnp.mean(jax.lax.dynamic_slice_in_dim(h, s, center_len, axis=0), axis=0)

  return jax.vmap(one)(hidden.astype(jnp.float32), start)
