"""Multi-head attention with Enformer's relative position encodings (enformer-pytorch 0.8.12,
modeling_enformer.py: the positional features at lines 75-134, `relative_shift` 136-143,
`Attention` 225-294).

The logit of query i for key j is the content term (q_i + u) . k_j plus the position term
(q_i + v) . W f(j - i), where q is scaled by dim_key^-0.5, u = `rel_content_bias`,
v = `rel_pos_bias` (one per head) and f(d) the `positional_embedding` of the distance d:
exponential, central-mask and gamma basis functions of |d|, then the same times sign(d).
The position term is computed for the 2N - 1 distances once and moved to (i, j) by
`relative_shift`, as the original does.

The softmax is written out rather than `jax.nn.dot_product_attention`: that needs the
value heads as wide as the keys' (Enformer's are dim/heads = 192 against 64 at paper
size), the position term is a full (B, H, N, N) bias anyway, and the original's dropout
acts on the attention weights. Dropout (attention weights, positional features) draws from
the "mask" rng stream, the only one the trainer passes, and only with `train`.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln, xlogy
from jaxtyping import Array, Float, Int

from seq2exp_jax.model.init import symmetric_uniform, torch_linear_init

Dtype = Any
N_CLASSES = 3  # exponential, central mask, gamma; each also times sign(d)


def exponential_features(positions: Int[Array, "P"], features: int, seq_len: int
                         ) -> Float[Array, "P F"]:
  """exp(-ln 2 |d| / h) for half-lives h = 2^linspace(3, log2(seq_len), F) (line 75)."""
  max_range = math.log(seq_len) / math.log(2.0)
  half_life = 2.0 ** jnp.linspace(3.0, max_range, features, dtype=jnp.float32)
  return jnp.exp(-math.log(2.0) / half_life[None] * jnp.abs(positions)[:, None])


def central_mask_features(positions: Int[Array, "P"], features: int
                          ) -> Float[Array, "P F"]:
  """1 where |d| < 2^k - 1, k = 1..F (line 82)."""
  widths = 2.0 ** jnp.arange(1, features + 1, dtype=jnp.float32) - 1
  return (widths[None] > jnp.abs(positions)[:, None]).astype(jnp.float32)


def gamma_features(positions: Int[Array, "P"], features: int, seq_len: int,
                   eps: float = 1e-8) -> Float[Array, "P F"]:
  """Gamma pdfs of |d| with means linspace(seq_len / F, seq_len, F) and standard deviation
  seq_len / (2F), plus eps, each row divided by its maximum (lines 87-108)."""
  stddev = seq_len / (2 * features)
  mean = jnp.linspace(seq_len / features, seq_len, features, dtype=jnp.float32)[None]
  concentration, rate = (mean / stddev) ** 2, mean / stddev ** 2
  x = jnp.abs(positions).astype(jnp.float32)[:, None]
  log_unnormalised = xlogy(concentration - 1.0, x) - rate * x
  log_normalisation = gammaln(concentration) - concentration * jnp.log(rate)
  probabilities = jnp.exp(log_unnormalised - log_normalisation) + eps
  return probabilities / jnp.max(probabilities, axis=-1, keepdims=True)


def positional_embedding(seq_len: int, feature_size: int) -> Float[Array, "P F"]:
  """Features of the distances -seq_len+1 .. seq_len-1 (P = 2 seq_len - 1), float32:
  [exponential, central mask, gamma, the three times sign(d)] (line 110)."""
  if feature_size % (2 * N_CLASSES):
    raise ValueError(f"positional features {feature_size}: expected a multiple of "
                     f"{2 * N_CLASSES}")
  per_class = feature_size // (2 * N_CLASSES)
  distances = jnp.arange(-seq_len + 1, seq_len)
  embeddings = jnp.concatenate([exponential_features(distances, per_class, seq_len),
                                central_mask_features(distances, per_class),
                                gamma_features(distances, per_class, seq_len)], axis=-1)
  sign = jnp.sign(distances).astype(jnp.float32)[:, None]
  return jnp.concatenate([embeddings, sign * embeddings], axis=-1)


def relative_shift(x: Float[Array, "B H N P"]) -> Float[Array, "B H N N"]:
  """out[..., i, j] = x[..., i, (N - 1) + (j - i)]: logits over the distances d = k - (N - 1)
  to logits over keys (the original's pad-and-reshape, line 136)."""
  b, h, n, p = x.shape
  x = jnp.concatenate([jnp.zeros_like(x[..., :1]), x], axis=-1)
  x = x.reshape(b, h, p + 1, n)[:, :, 1:, :].reshape(b, h, n, p)
  return x[..., :(p + 1) // 2]


def relative_logits(q: Float[Array, "B H N K"], k: Float[Array, "B H N K"],
                    rel_k: Float[Array, "H P K"], content_bias: Float[Array, "H K"],
                    pos_bias: Float[Array, "H K"]) -> Float[Array, "B H N N"]:
  """(q_i + u) . k_j + (q_i + v) . rel_k[(N - 1) + (j - i)]; q already scaled."""
  content = jnp.einsum("bhid,bhjd->bhij", q + content_bias[None, :, None], k)
  position = jnp.einsum("bhid,hjd->bhij", q + pos_bias[None, :, None], rel_k)
  return content + relative_shift(position)


def torch_dense(features: int, fan_in: int, dtype: Dtype, name: str, use_bias: bool = True,
                zero: bool = False) -> nn.Dense:
  """A PyTorch Linear: weight and bias U(+-1/sqrt(fan_in)), or both zero with `zero`."""
  kernel = nn.initializers.zeros if zero else torch_linear_init()
  bias = nn.initializers.zeros if zero else symmetric_uniform(1 / math.sqrt(fan_in))
  return nn.Dense(features, use_bias=use_bias, dtype=dtype, kernel_init=kernel,
                  bias_init=bias, name=name)


class RelativeAttention(nn.Module):
  """Enformer's `Attention`: to_q, to_k (D -> H*dim_key), to_v (D -> H*dim_value), all
  without bias; to_out (H*dim_value -> D, zero-initialised); to_rel_k (positional features
  -> H*dim_key, no bias); rel_content_bias and rel_pos_bias (H, dim_key) ~ N(0, 1)."""

  heads: int = 8
  dim_key: int = 64
  dim_value: int = 64
  num_rel_pos_features: int = 64
  attn_dropout: float = 0.0
  pos_dropout: float = 0.0
  dtype: Dtype = jnp.float32

  def _heads(self, x: Float[Array, "B N E"]) -> Float[Array, "B H N C"]:
    b, n, _ = x.shape
    return x.reshape(b, n, self.heads, -1).transpose(0, 2, 1, 3)

  @nn.compact
  def __call__(self, x: Float[Array, "B N D"], train: bool = False) -> Float[Array, "B N D"]:
    b, n, d = x.shape
    h, dk, dv = self.heads, self.dim_key, self.dim_value
    proj = lambda width, name: torch_dense(width, d, self.dtype, name, use_bias=False)  # noqa: E731
    x = x.astype(self.dtype)
    q = self._heads(proj(h * dk, "to_q")(x)) * dk ** -0.5
    k = self._heads(proj(h * dk, "to_k")(x))
    v = self._heads(proj(h * dv, "to_v")(x))
    positions = positional_embedding(n, self.num_rel_pos_features)
    positions = nn.Dropout(self.pos_dropout, rng_collection="mask")(
        positions, deterministic=not train)
    rel_k = torch_dense(h * dk, self.num_rel_pos_features, self.dtype, "to_rel_k",
                        use_bias=False)(positions)
    rel_k = rel_k.reshape(-1, h, dk).transpose(1, 0, 2)
    normal = nn.initializers.normal(1.0)
    content_bias = self.param("rel_content_bias", normal, (h, dk)).astype(self.dtype)
    pos_bias = self.param("rel_pos_bias", normal, (h, dk)).astype(self.dtype)
    logits = relative_logits(q, k, rel_k, content_bias, pos_bias)
    weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(self.dtype)
    weights = nn.Dropout(self.attn_dropout, rng_collection="mask")(
        weights, deterministic=not train)
    out = jnp.einsum("bhij,bhjd->bhid", weights, v).transpose(0, 2, 1, 3).reshape(b, n, h * dv)
    return torch_dense(d, h * dv, self.dtype, "to_out", zero=True)(out)
