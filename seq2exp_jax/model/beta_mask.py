"""`BetaMask`: the learned mask of Seq2Exp, from the generator's logits and the signals.

    generator Beta   Beta(alpha1, beta1) = softplus(logits[..., 1]), softplus(logits[..., 0])
                     (+ beta_min + 1e-8)
    signal prior     per track s: a_s = (signal_s + beta_min) k + 1e-8,
                     b_s = (prior_beta_s + beta_min) k, k = prior_scale_factor;
                     alpha2 = sum_s w_s a_s, beta2 = sum_s w_s b_s, w = softmax(log(w / sum w))
    combination      Beta(z_scale (alpha1 + alpha2), z_scale (beta1 + beta2))
    mask             training: a reparameterised draw (straight-through hard draw when
                     `hard`); evaluation: the mean (or mean >= threshold when `hard`)
    bottleneck       KL(combined || Beta(m_scale, m_scale (1 - m) / m)), m = marginal_mean,
                     averaged over positions and batch

The module has no parameters: the generator and its output Linear belong to the model.
It runs in float32 whatever the compute dtype.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from seq2exp_jax.model import bottleneck
from seq2exp_jax.model.layers import log_reads, torch_softplus
from seq2exp_jax.model.outputs import MaskDistribution


class BetaMask(nn.Module):
  """The Beta information bottleneck (names as in the original's config).

  Published values: soft run prior_scale_factor 10, beta_min 1, marginal_mean 0.1,
  marginal_scale 10; hard run 1, 0, 0.45, 0.1 with hard=True, threshold 0.5.
  """

  prior_scale_factor: float = 10.0
  prior_beta: tuple[float, ...] = (1.5, 0.2, 1.0)
  prior_weight: tuple[float, ...] = (2.0, 2.0, 1.0)
  beta_min: float = 1.0
  z_scale: float = 1.0
  marginal_mean: float = 0.1
  marginal_scale: float = 10.0
  hard: bool = False
  threshold: float = 0.5
  # A named option, "none" in every published row: "log1p" builds the prior from
  # log(1 + signal), so raw read counts (hundreds on an element) do not make the prior's
  # concentrations 10^2-10^3 times the generator's (docs/benchmark.md, "Diagnosis").
  prior_transform: str = "none"

  def __post_init__(self):
    problems = []
    if self.prior_transform not in ("none", "log1p"):
      problems.append(f"prior_transform {self.prior_transform!r}: expected 'none' or 'log1p'")
    if len(self.prior_beta) != len(self.prior_weight) or not self.prior_beta:
      problems.append(f"prior_beta {self.prior_beta} and prior_weight {self.prior_weight} "
                      "need one value per signal track each")
    if any(w <= 0 for w in self.prior_weight):
      problems.append(f"prior_weight {self.prior_weight}: expected positive weights")
    if self.prior_scale_factor <= 0 or self.z_scale <= 0 or self.marginal_scale <= 0:
      problems.append("prior_scale_factor, z_scale and marginal_scale must be positive (got "
                      f"{self.prior_scale_factor}, {self.z_scale}, {self.marginal_scale})")
    if self.beta_min < 0:
      problems.append(f"beta_min {self.beta_min}: expected >= 0")
    if not 0 < self.marginal_mean < 1:
      problems.append(f"marginal_mean {self.marginal_mean}: expected 0 < m < 1")
    if not 0 <= self.threshold <= 1:
      problems.append(f"threshold {self.threshold}: expected 0 <= threshold <= 1")
    if problems:
      raise ValueError("BetaMask: " + "; ".join(problems))
    super().__post_init__()

  def signal_prior(self, signals: Float[Array, "B L S"]
                   ) -> tuple[Float[Array, "B L S"], Float[Array, "S"]]:
    """The signals' Beta per track: alpha per position, beta per track."""
    if signals.shape[-1] != len(self.prior_beta):
      raise ValueError(f"BetaMask: signals have {signals.shape[-1]} tracks, prior_beta "
                       f"{self.prior_beta} has {len(self.prior_beta)}")
    k, b_min = self.prior_scale_factor, self.beta_min
    read = signals.astype(jnp.float32)
    if self.prior_transform == "log1p":
      read = log_reads(read)
    alpha = (read + b_min) * k + 1e-8
    beta = (jnp.asarray(self.prior_beta, jnp.float32) + b_min) * k
    return alpha, beta

  def prior_mixing_weights(self) -> Float[Array, "S"]:
    """softmax(log(w / sum w)) = w / sum w, computed as the original does."""
    w = jnp.asarray(self.prior_weight, jnp.float32)
    return jax.nn.softmax(jnp.log(w / jnp.sum(w)))

  def distribution(self, logits: Float[Array, "B L 2"], signals: Float[Array, "B L S"]
                   ) -> MaskDistribution:
    """The generator's, the signals' and the combined Betas (logits column 1 -> alpha,
    column 0 -> beta)."""
    logits = logits.astype(jnp.float32)
    post_alpha = torch_softplus(logits[..., 1]) + self.beta_min + 1e-8
    post_beta = torch_softplus(logits[..., 0]) + self.beta_min + 1e-8
    prior_alpha, prior_beta = self.signal_prior(signals)
    w = self.prior_mixing_weights()
    z_alpha = self.z_scale * (post_alpha + jnp.einsum("bls,s->bl", prior_alpha, w))
    z_beta = self.z_scale * (post_beta + jnp.sum(prior_beta * w))
    return MaskDistribution(post_alpha=post_alpha, post_beta=post_beta,
                            prior_alpha=prior_alpha, prior_beta=prior_beta, z_alpha=z_alpha,
                            z_beta=z_beta)

  def kl(self, dist: MaskDistribution) -> Float[Array, ""]:
    """The bottleneck: KL to the sparse Beta prior, averaged over batch and positions."""
    m_alpha, m_beta = bottleneck.marginal_concentrations(self.marginal_mean,
                                                        self.marginal_scale)
    return jnp.mean(bottleneck.beta_kl(dist.z_alpha, dist.z_beta, m_alpha, m_beta))

  def __call__(self, logits: Float[Array, "B L 2"], signals: Float[Array, "B L S"], *,
               key: PRNGKeyArray | None = None
               ) -> tuple[Float[Array, "B L"], Float[Array, ""], MaskDistribution]:
    """(mask, KL, distribution). With `key` (training) the mask is a draw, else the
    deterministic evaluation mask."""
    dist = self.distribution(logits, signals)
    if key is not None:
      z = bottleneck.beta_sample(key, dist.z_alpha, dist.z_beta)
      mask = bottleneck.straight_through(z, self.threshold) if self.hard else z
    else:
      z_mean = bottleneck.beta_mean(dist.z_alpha, dist.z_beta)
      mask = bottleneck.hard_threshold(z_mean, self.threshold) if self.hard else z_mean
    return mask, self.kl(dist), dist
