"""`ModelOutput`: what every model's forward pass returns, so callers never ask which model
they hold."""

from __future__ import annotations

import flax.struct
import jax.numpy as jnp
from jaxtyping import Array, Float, Int


@flax.struct.dataclass
class MaskDistribution:
  """The Beta distributions behind a learned mask, per position.

  post_alpha, post_beta: the generator's Beta (Kumaraswamy with post_dist='kuma');
  prior_alpha (per prior track T: the signal tracks the prior reads, then the include list
  when it is a prior) and prior_beta (one per track, the same at every position): the
  prior's Betas, mixed with weights prior_mix (summing to 1); z_alpha, z_beta: the
  distribution the mask is drawn from (their combination, or without decouple_x the
  generator's own).
  """

  post_alpha: Float[Array, "B L"]
  post_beta: Float[Array, "B L"]
  prior_alpha: Float[Array, "B L T"]
  prior_beta: Float[Array, "T"]
  prior_mix: Float[Array, "T"]
  z_alpha: Float[Array, "B L"]
  z_beta: Float[Array, "B L"]


@flax.struct.dataclass
class ModelOutput:
  """prediction: log expression, float32.
  mask: the predictor's mask after the blacklist/promoter rules; None for models without one.
  kl, continuity: float32 scalars (0 without a learned mask).
  overflow: selected positions a too-small packing capacity dropped (0 unless packed).
  distribution: the Betas of a learned mask, else None.
  """

  prediction: Float[Array, "B"]
  mask: Float[Array, "B L"] | None
  kl: Float[Array, ""]
  continuity: Float[Array, ""]
  overflow: Int[Array, "B"]
  distribution: MaskDistribution | None = None

  @classmethod
  def unmasked(cls, prediction: Float[Array, "B"]) -> "ModelOutput":
    """The output of a model that reads the whole window."""
    zero = jnp.zeros((), jnp.float32)
    return cls(prediction=prediction, mask=None, kl=zero, continuity=zero,
               overflow=jnp.zeros(prediction.shape[:1], jnp.int32))
