"""What the expression head reads from a model's hidden states over the window.

* "centre" (the original): the mean over the promoter window (`promoter.promoter_mean`).
* "centre+contact": + the hidden states outside the promoter weighted by Hi-C contact
  (and the mask, when the model has one), `promoter.contact_pool`.
* "centre+abc": + an ABC-shaped path, log(1 + sum_t w_t c_t s_t / center_len) per channel,
  with s_t = softplus(Dense(K)(h_t)) a non-negative per-position score, c_t the contact and
  w_t the mask: the log of a contact-weighted sum, the form the synthetic genome's
  enhancer term has (docs/benchmark.md, "Diagnosis"), and the ABC model's.

Only the options add params (`pool/abc_score`); "centre" keeps the original's param tree.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
from jaxtyping import Array, Float

from seq2exp_jax.model.promoter import contact_pool, promoter_mean

POOLS = ("centre", "centre+contact", "centre+abc")


class WindowPool(nn.Module):
  kind: str = "centre"
  center_len: int = 2000
  contact_track: int = 2
  abc_channels: int = 8

  @nn.compact
  def __call__(self, hidden: Float[Array, "B L D"], signals: Float[Array, "B L S"],
               weights: Float[Array, "B L"] | None) -> Float[Array, "B P"]:
    """(B, D) for "centre", (B, 2D) for "centre+contact", (B, D + K) for "centre+abc"."""
    pooled = promoter_mean(hidden, self.center_len)
    if self.kind == "centre":
      return pooled
    if self.kind == "centre+contact":
      extra = contact_pool(hidden, signals, weights, self.center_len, self.contact_track)
    elif self.kind == "centre+abc":
      score = nn.softplus(nn.Dense(self.abc_channels, name="abc_score")(
          hidden.astype(jnp.float32)))
      total = contact_pool(score, signals, weights, self.center_len, self.contact_track)
      extra = jnp.log1p(total * (hidden.shape[1] / self.center_len))
    else:
      raise ValueError(f"pool={self.kind!r}: expected one of {POOLS}")
    return jnp.concatenate([pooled.astype(jnp.float32), extra], axis=-1)
