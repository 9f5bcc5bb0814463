"""The Kumaraswamy posterior of the original's `post_dist='kuma'`: a draw, its mean, and the
original's closed-form approximation of KL(Kumaraswamy(a, b) || Beta(alpha, beta)).

Kumaraswamy(a, b) has CDF 1 - (1 - x^a)^b, so x = (1 - u^(1 / b))^(1 / a) for u ~ U(0, 1) is
a reparameterised draw (PyTorch's `Kumaraswamy.rsample` composes the same transforms). The
KL is `kldivergence_kuma` of the original (GeneExpformer.py), a 10-term Taylor series in
(prior_beta - 1) b with a Taylor approximation of digamma(b) (Nalisnick & Smyth 2017),
computed in float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln
from jaxtyping import Array, Float, PRNGKeyArray

EULER_GAMMA = 0.57721  # the original's constant, as written there
TAYLOR_TERMS = 10


def _beta_fn(a, b):
  return jnp.exp(gammaln(a) + gammaln(b) - gammaln(a + b))


def sample(key: PRNGKeyArray, a: Float[Array, "*shape"], b: Float[Array, "*shape"]
           ) -> Float[Array, "*shape"]:
  """A reparameterised draw from Kumaraswamy(a, b); (...) float32 in (0, 1)."""
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  tiny = jnp.finfo(jnp.float32).tiny
  u = jax.random.uniform(key, a.shape, jnp.float32, minval=tiny, maxval=1.0)
  return jnp.power(jnp.clip(1.0 - jnp.power(u, 1.0 / b), tiny, 1.0), 1.0 / a)


def mean(a: Float[Array, "*shape"], b: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
  """E[x] = b B(1 + 1/a, b), as PyTorch's `Kumaraswamy.mean`; (...) float32."""
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  return b * jnp.exp(gammaln(1.0 + 1.0 / a) + gammaln(b) - gammaln(1.0 + 1.0 / a + b))


def kl_to_beta(a: Float[Array, "..."], b: Float[Array, "..."],
               prior_alpha: Float[Array, "..."] | float,
               prior_beta: Float[Array, "..."] | float) -> Float[Array, "..."]:
  """The original's KL(Kumaraswamy(a, b) || Beta(prior_alpha, prior_beta)), elementwise
  (the four broadcast together)."""
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  alpha = jnp.asarray(prior_alpha, jnp.float32)
  beta = jnp.asarray(prior_beta, jnp.float32)
  series = sum(1.0 / (m + a * b) * _beta_fn(m / a, b) for m in range(1, TAYLOR_TERMS + 1))
  kl = series * (beta - 1.0) * b
  digamma_b = jnp.log(b) - 1.0 / (2.0 * b) - 1.0 / (12.0 * b ** 2)
  kl = kl + (a - alpha) / a * (-EULER_GAMMA - digamma_b - 1.0 / b)
  kl = kl + jnp.log(a * b) + jnp.log(_beta_fn(alpha, beta))
  return kl - (b - 1.0) / b
