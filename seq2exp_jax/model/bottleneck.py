"""The Beta information bottleneck: per-position Beta masks, their KL, hard masks.

Everything here runs in float32 whatever the network's compute dtype: the KL and the
sampler need lgamma/digamma and small concentrations that bf16 cannot represent.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma, gammaln
from jaxtyping import Array, Float, PRNGKeyArray


def _f32(*arrays):
  return tuple(jnp.asarray(a, jnp.float32) for a in arrays)


@jax.custom_jvp
def _log_gamma_sample(key: jax.Array, alpha):
  """log of a Gamma(alpha, 1) draw, (...) float32 (log space keeps small alpha finite)."""
  return jax.random.loggamma(key, alpha)


@_log_gamma_sample.defjvp
def _log_gamma_sample_jvp(primals, tangents):
  # Implicit reparameterisation, d log z / d alpha = (dz/dalpha) / z, as JAX's own rule,
  # but on the whole array at once: on CPU JAX maps its rule over the elements one by one
  # (lax.map), which made this gradient ~2x slower at 131k positions.
  key, alpha = primals
  _, d_alpha = tangents
  log_z = _log_gamma_sample(key, alpha)
  z = jnp.maximum(jnp.exp(log_z), jnp.finfo(log_z.dtype).tiny)
  return log_z, jax.lax.random_gamma_grad(alpha, z) / z * d_alpha


def beta_sample(key: PRNGKeyArray, alpha: Float[Array, "..."] | float,
                beta: Float[Array, "..."] | float) -> Float[Array, "..."]:
  """A reparameterised draw z ~ Beta(alpha, beta), differentiable in both concentrations.

  z = Ga / (Ga + Gb) from two Gamma draws taken in log space (as `jax.random.beta`, whose
  draws it reproduces exactly); the Gamma draws get implicit reparameterisation gradients
  (dz/dalpha = -(dF/dalpha) / p(z)), which is what PyTorch's `Beta.rsample` does too.

  Args:
    alpha, beta: (...) positive concentrations, broadcast together.
  Returns:
    z: (...) float32 in [0, 1].
  """
  alpha, beta = _f32(alpha, beta)
  shape = jnp.broadcast_shapes(alpha.shape, beta.shape)
  key_a, key_b = jax.random.split(key)
  log_a = _log_gamma_sample(key_a, jnp.broadcast_to(alpha, shape))
  log_b = _log_gamma_sample(key_b, jnp.broadcast_to(beta, shape))
  log_max = jnp.maximum(log_a, log_b)
  gamma_a, gamma_b = jnp.exp(log_a - log_max), jnp.exp(log_b - log_max)
  return gamma_a / (gamma_a + gamma_b)


def beta_mean(alpha: Float[Array, "*shape"], beta: Float[Array, "*shape"]
              ) -> Float[Array, "*shape"]:
  """E[z] = alpha / (alpha + beta); (...) -> (...) float32."""
  alpha, beta = _f32(alpha, beta)
  return alpha / (alpha + beta)


def beta_kl(alpha1: Float[Array, "..."] | float, beta1: Float[Array, "..."] | float,
            alpha2: Float[Array, "..."] | float, beta2: Float[Array, "..."] | float
            ) -> Float[Array, "..."]:
  """Closed-form KL(Beta(alpha1, beta1) || Beta(alpha2, beta2)), elementwise, float32.

      log B(a2, b2) - log B(a1, b1) + (a1 - a2) psi(a1) + (b1 - b2) psi(b1)
        + (a2 - a1 + b2 - b1) psi(a1 + b1)
  """
  a1, b1, a2, b2 = _f32(alpha1, beta1, alpha2, beta2)
  log_beta_fn = lambda a, b: gammaln(a) + gammaln(b) - gammaln(a + b)  # noqa: E731
  return (log_beta_fn(a2, b2) - log_beta_fn(a1, b1)
          + (a1 - a2) * digamma(a1) + (b1 - b2) * digamma(b1)
          + (a2 - a1 + b2 - b1) * digamma(a1 + b1))


def hard_threshold(soft: Float[Array, "*shape"], threshold: float = 0.5
                   ) -> Float[Array, "*shape"]:
  """1.0 where soft >= threshold else 0.0 (no gradient); (...) -> (...) float32."""
  return (jnp.asarray(soft, jnp.float32) >= threshold).astype(jnp.float32)


def straight_through(soft: Float[Array, "*shape"], threshold: float = 0.5
                     ) -> Float[Array, "*shape"]:
  """Hard mask in the forward pass, gradient of `soft` in the backward pass.

  Computed as `hard - stop_gradient(soft) + soft`, like the original; where soft >= 0.5 the
  forward value is exactly 1.0 in float32, so `mask == 1` selects the same positions.
  """
  soft = jnp.asarray(soft, jnp.float32)
  return hard_threshold(soft, threshold) - jax.lax.stop_gradient(soft) + soft


def marginal_concentrations(marginal_mean: float, marginal_scale: float) -> tuple[float, float]:
  """The sparse prior Beta(s, s (1 - m) / m), computed in float32 like the original.

  Seq2Exp-soft (m=0.1, s=10): (10, 90). Seq2Exp-hard (m=0.45, s=0.1): (0.1, 0.12222224).
  """
  m, s = np.float32(marginal_mean), np.float32(marginal_scale)
  return float(np.float32(1.0) * s), float((np.float32(1.0) - m) / m * s)


def gumbel_straight_through(key: PRNGKeyArray | None, logits: Float[Array, "*shape 2"],
                            temperature: float = 1.0) -> Float[Array, "*shape"]:
  """The original's `F.gumbel_softmax(logits, tau, hard=True)[..., 1]` (its mask when
  `post_sample=False`): with `key`, y = softmax((logits + Gumbel noise) / tau) and the value
  is 1.0 where y's argmax is column 1, else 0.0, exactly, with the gradient of y[..., 1];
  without `key` (evaluation) the noise-free argmax, logits[..., 1] > logits[..., 0].

  Written as `hard + (soft - stop_gradient(soft))`, whose forward value is `hard` exactly
  (the original's `hard - soft.detach() + soft` can round off 0/1).
  """
  logits = jnp.asarray(logits, jnp.float32)
  if key is None:
    return (logits[..., 1] > logits[..., 0]).astype(jnp.float32)
  noisy = (logits + jax.random.gumbel(key, logits.shape, jnp.float32)) / temperature
  soft = jax.nn.softmax(noisy, axis=-1)[..., 1]
  hard = (jnp.argmax(noisy, axis=-1) == 1).astype(jnp.float32)
  return hard + (soft - jax.lax.stop_gradient(soft))


def smooth_max(mask: Float[Array, "B L"], window: int) -> Float[Array, "B L"]:
  """The original's `smooth_max` (its `pool_mask`): the max over a centred window of odd
  width `window` (stride 1, edges padded with -inf), so a selected run grows by
  (window - 1) / 2 positions on each side."""
  if window < 1 or window % 2 == 0:
    raise ValueError(f"smooth_max: window {window}: expected an odd width >= 1")
  pad = (window - 1) // 2
  return jax.lax.reduce_window(jnp.asarray(mask, jnp.float32), -jnp.inf, jax.lax.max,
                               (1, window), (1, 1), ((0, 0), (pad, pad)))


def top_k_mask(soft: Float[Array, "B L"], fraction: float, keep_values: bool = False
               ) -> Float[Array, "B L"]:
  """The original's test-time `test_top` mask: exactly k = int(L * fraction) positions per
  row, those of largest `soft` (ties broken by position, as a top-k does), set to 1.0, or
  to their `soft` value with `keep_values` (`test_top_soft`); every other position 0."""
  soft = jnp.asarray(soft, jnp.float32)
  k = int(soft.shape[1] * fraction)
  if k == 0:
    return jnp.zeros_like(soft)
  _, index = jax.lax.top_k(soft, k)
  rows = jnp.arange(soft.shape[0])[:, None]
  values = soft[rows, index] if keep_values else jnp.ones(index.shape, jnp.float32)
  return jnp.zeros_like(soft).at[rows, index].set(values)
