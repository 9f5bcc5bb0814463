"""The promoter window and the rules every mask obeys.

The promoter is the central `center_len` positions of the window, starting at
(L - center_len) // 2 (the TSS sits at index L // 2). Every mask, learned or fixed, has its
blacklisted positions set to 0 and then its promoter set to 1 (the promoter wins), and the
expression head pools the promoter.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float


def centre_start(length: int, center_len: int) -> int:
  """First index of the centred promoter window, (L - center_len) // 2."""
  if not 0 <= center_len <= length:
    raise ValueError(f"center_len {center_len}: expected 0 <= center_len <= the window "
                     f"({length})")
  return (length - center_len) // 2


def promoter_positions(length: int, center_len: int) -> np.ndarray:
  """bool (L,): True on the central `center_len` positions (those the model forces to 1)."""
  out = np.zeros(length, bool)
  start = centre_start(length, center_len)
  out[start:start + center_len] = True
  return out


def promoter_mean(hidden: Float[Array, "B L D"], center_len: int) -> Float[Array, "B D"]:
  """Mean over the promoter positions, float32."""
  c0 = centre_start(hidden.shape[1], center_len)
  return jnp.mean(hidden[:, c0:c0 + center_len].astype(jnp.float32), axis=1)


def apply_region_rules(mask: Float[Array, "B L"], blacklist: Bool[Array, "B L"] | None,
                       center_len: int, includelist: Bool[Array, "B L"] | None = None
                       ) -> Float[Array, "B L"]:
  """Blacklisted positions -> 0, then the include list's -> 1 when given (the original's
  hard include list), then the promoter -> 1 (the promoter wins); float32."""
  mask = mask.astype(jnp.float32)
  if blacklist is not None:
    mask = jnp.where(blacklist, 0.0, mask)
  if includelist is not None:
    mask = jnp.where(includelist, 1.0, mask)
  return jnp.where(jnp.asarray(promoter_positions(mask.shape[1], center_len))[None], 1.0,
                   mask)


def contact_pool(hidden: Float[Array, "B L D"], signals: Float[Array, "B L S"],
                 weights: Float[Array, "B L"] | None, center_len: int, contact_track: int
                 ) -> Float[Array, "B D"]:
  """sum_t w_t c_t h_t / L over the positions outside the promoter, float32: the hidden
  states weighted by their Hi-C contact with the TSS, c_t = 10^signal - 1 (the track holds
  log10(1 + contact)), and by the mask w_t when given. An ABC-like path from every element
  of the window to the head, in the scale of the window."""
  length = hidden.shape[1]
  contact = jnp.expm1(signals[..., contact_track].astype(jnp.float32) * jnp.log(10.0))
  w = contact if weights is None else contact * weights.astype(jnp.float32)
  w = jnp.where(jnp.asarray(promoter_positions(length, center_len))[None], 0.0, w)
  return jnp.einsum("bl,bld->bd", w, hidden.astype(jnp.float32)) / length
