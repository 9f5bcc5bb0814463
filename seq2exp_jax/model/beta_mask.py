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

The original's other mask options, each a field named as in its config (off by default,
off in every published row; docs/method.md, "Options of the original"):

* `prior_signal`: one track ("h3k27ac", "DHS", "hic") builds the prior alone (weight 1).
* include list as a prior (the model passes `includelist`; the original's
  `use_include_list` with `mask_region_hard=False`): one more prior track,
  Beta(include_alpha * include + 1e-8, 1e-8), weighted by `include_weight` (the original's
  fourth `prior_weight` entry) next to the tracks' `prior_weight`.
* `only_x_sig`: the mask distribution is the signal prior alone (the generator is unused,
  and gets no gradient).
* `decouple_x=False`: the mask is drawn from the generator's distribution itself and the
  bottleneck is sum_s w_s KL(generator || prior_s) instead of KL(combined || sparse).
* `post_dist="kuma"`: the generator's distribution is Kumaraswamy(alpha1, beta1) (its draw,
  mean and the original's KL approximation; `kumaraswamy.py`). With `decouple_x` the
  combination is a Beta of the same concentrations, as in the original.
* `post_sample=False`: the mask is a Gumbel straight-through draw from the logits
  (`bottleneck.gumbel_straight_through`, temperature `gumbel_temp`); no KL (the original's
  KL reads a distribution this path never builds).
* `pool_mask=W`: the max over W positions of the soft draw (training) or of the mean before
  the threshold (hard evaluation), `bottleneck.smooth_max`.
* `test_top=f`: the evaluation mask is the top int(L f) positions by the mean, 1.0 or (with
  `test_top_soft`) their mean.
* `dist_param_grad`: the prior's mixing weights and track betas are learned params
  (`prior_weights` = log(w / sum w), `signal_betas` = prior_beta), as in the original.

The module has no parameters but those of `dist_param_grad`: the generator and its output
Linear belong to the model. It runs in float32 whatever the compute dtype.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from seq2exp_jax.model import bottleneck, kumaraswamy
from seq2exp_jax.model.layers import log_reads, torch_softplus
from seq2exp_jax.model.outputs import MaskDistribution

# The original's `prior_signal` values and the signal track each reads.
PRIOR_SIGNALS = {"all": None, "h3k27ac": 0, "DHS": 1, "hic": 2}
POST_DISTS = ("beta", "kuma")
EPS = 1e-8  # the original's eps on Beta concentrations


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
  # The original's options (module docstring).
  prior_signal: str = "all"
  include_alpha: float = 10.0
  include_weight: float = 1.0
  only_x_sig: bool = False
  decouple_x: bool = True
  post_dist: str = "beta"
  post_sample: bool = True
  gumbel_temp: float = 1.0
  pool_mask: int = 0
  test_top: float = 0.0
  test_top_soft: bool = False
  dist_param_grad: bool = False

  def __post_init__(self):
    rules = [
        (self.prior_transform in ("none", "log1p"),
         f"prior_transform {self.prior_transform!r}: expected 'none' or 'log1p'"),
        (len(self.prior_weight) == len(self.prior_beta) and bool(self.prior_beta),
         f"prior_beta {self.prior_beta} and prior_weight {self.prior_weight} need one value "
         "per signal track each"),
        (all(w >= 0 for w in self.prior_weight) and sum(self.prior_weight) > 0,
         f"prior_weight {self.prior_weight}: expected weights >= 0, not all 0"),
        (self.prior_scale_factor > 0 and self.z_scale > 0 and self.marginal_scale > 0,
         "prior_scale_factor, z_scale and marginal_scale must be positive (got "
         f"{self.prior_scale_factor}, {self.z_scale}, {self.marginal_scale})"),
        (self.beta_min >= 0, f"beta_min {self.beta_min}: expected >= 0"),
        (0 < self.marginal_mean < 1, f"marginal_mean {self.marginal_mean}: expected 0 < m < 1"),
        (0 <= self.threshold <= 1, f"threshold {self.threshold}: expected 0 <= threshold <= 1"),
        (self.prior_signal in PRIOR_SIGNALS,
         f"prior_signal {self.prior_signal!r}: expected one of {sorted(PRIOR_SIGNALS)}"),
        (self.post_dist in POST_DISTS, f"post_dist {self.post_dist!r}: expected {POST_DISTS}"),
        (self.gumbel_temp > 0, f"gumbel_temp {self.gumbel_temp}: expected > 0"),
        (self.pool_mask == 0 or (self.pool_mask > 0 and self.pool_mask % 2 == 1),
         f"pool_mask {self.pool_mask}: expected 0 (off) or an odd window (the original's "
         "max_pool1d returns L - 1 positions for an even one)"),
        (0 <= self.test_top < 1, f"test_top {self.test_top}: expected a fraction in [0, 1)"),
        (not self.test_top_soft or self.test_top > 0,
         "test_top_soft=True keeps the values of a test_top mask: it needs test_top > 0"),
        (self.include_alpha > 0 and self.include_weight > 0,
         f"include_alpha {self.include_alpha}, include_weight {self.include_weight}: expected "
         "> 0"),
        (self.post_sample or not self.hard,
         "post_sample=False (the Gumbel mask) is already hard: it takes hard=False"),
    ]
    problems = [message for ok, message in rules if not ok]
    if problems:
      raise ValueError("BetaMask: " + "; ".join(problems))
    super().__post_init__()

  @property
  def binary(self) -> bool:
    """Whether every mask it gives (training and evaluation) is 0/1."""
    return (self.hard or not self.post_sample) and not self.test_top_soft

  def tracks(self) -> tuple[int, ...]:
    """The signal tracks the prior reads."""
    one = PRIOR_SIGNALS[self.prior_signal]
    return tuple(range(len(self.prior_beta))) if one is None else (one,)

  def _constants(self, with_include: bool
                 ) -> tuple[Float[Array, "S"], Float[Array, ""], Float[Array, "S"]]:
    """log(w / sum w) per track, log(include_weight / sum w), and the per-track betas:
    learned params with `dist_param_grad` (`prior_weights`, `include_weight` when the include
    list is a prior, `signal_betas`; initialised to these values), else constants. The
    weights of the tracks a prior reads are mixed by a softmax (so renormalised)."""
    total = sum(self.prior_weight)
    log_w = jnp.log(jnp.asarray(self.prior_weight, jnp.float32) / total)
    log_include = jnp.log(jnp.asarray(self.include_weight / total, jnp.float32))
    betas = jnp.asarray(self.prior_beta, jnp.float32)
    if self.dist_param_grad:
      log_w = self.param("prior_weights", lambda _: log_w)
      betas = self.param("signal_betas", lambda _: betas)
      if with_include:
        log_include = self.param("include_weight", lambda _: log_include)
    return log_w, log_include, betas

  def signal_prior(self, signals: Float[Array, "B L S"],
                   includelist: Bool[Array, "B L"] | None = None
                   ) -> tuple[Float[Array, "B L T"], Float[Array, "T"], Float[Array, "T"]]:
    """The prior's Betas per track it reads (alpha per position, beta per track) and their
    mixing weights (summing to 1); an include list adds the last track."""
    if signals.shape[-1] != len(self.prior_beta):
      raise ValueError(f"BetaMask: signals have {signals.shape[-1]} tracks, prior_beta "
                       f"{self.prior_beta} has {len(self.prior_beta)}")
    with_include = includelist is not None
    tracks = jnp.asarray(self.tracks())
    log_w, log_include, betas = self._constants(with_include)
    log_mix = log_w[tracks]
    if with_include:
      log_mix = jnp.concatenate([log_mix, log_include[None]])
    weights = jax.nn.softmax(log_mix)
    k, b_min = self.prior_scale_factor, self.beta_min
    read = signals.astype(jnp.float32)
    if self.prior_transform == "log1p":
      read = log_reads(read)
    alpha = (read[..., tracks] + b_min) * k + EPS
    beta = (betas[tracks] + b_min) * k
    if with_include:
      include = includelist.astype(jnp.float32)[..., None] * self.include_alpha + EPS
      alpha = jnp.concatenate([alpha, include], -1)
      beta = jnp.concatenate([beta, jnp.full((1,), EPS, jnp.float32)])
    return alpha, beta, weights

  def distribution(self, logits: Float[Array, "B L 2"], signals: Float[Array, "B L S"],
                   includelist: Bool[Array, "B L"] | None = None) -> MaskDistribution:
    """The generator's, the signals' and the combined distributions (logits column 1 ->
    alpha, column 0 -> beta). Without `decouple_x` the mask's distribution (z) is the
    generator's own."""
    logits = logits.astype(jnp.float32)
    if self.only_x_sig:  # the original freezes the generator
      logits = jax.lax.stop_gradient(logits)
    eps = EPS if self.post_dist == "beta" else 0.0
    post_alpha = torch_softplus(logits[..., 1]) + self.beta_min + eps
    post_beta = torch_softplus(logits[..., 0]) + self.beta_min + eps
    prior_alpha, prior_beta, w = self.signal_prior(signals, includelist)
    if not self.decouple_x:
      z_alpha, z_beta = post_alpha, post_beta
    else:
      mix_alpha = jnp.einsum("blt,t->bl", prior_alpha, w)
      mix_beta = jnp.sum(prior_beta * w)
      if not self.only_x_sig:
        mix_alpha, mix_beta = post_alpha + mix_alpha, post_beta + mix_beta
      z_alpha, z_beta = self.z_scale * mix_alpha, self.z_scale * jnp.broadcast_to(
          mix_beta, mix_alpha.shape)
    return MaskDistribution(post_alpha=post_alpha, post_beta=post_beta,
                            prior_alpha=prior_alpha, prior_beta=prior_beta,
                            prior_mix=w, z_alpha=z_alpha, z_beta=z_beta)

  def kl(self, dist: MaskDistribution) -> Float[Array, ""]:
    """The bottleneck, averaged over batch and positions: KL to the sparse Beta prior, or
    without `decouple_x` the weighted KL of the generator's distribution to each prior."""
    if self.decouple_x:
      m_alpha, m_beta = bottleneck.marginal_concentrations(self.marginal_mean,
                                                          self.marginal_scale)
      return jnp.mean(bottleneck.beta_kl(dist.z_alpha, dist.z_beta, m_alpha, m_beta))
    kl = (kumaraswamy.kl_to_beta if self.post_dist == "kuma" else bottleneck.beta_kl)
    per_track = kl(dist.post_alpha[..., None], dist.post_beta[..., None], dist.prior_alpha,
                   dist.prior_beta)
    return jnp.sum(jnp.mean(per_track, axis=(0, 1)) * dist.prior_mix)

  @property
  def _kumaraswamy_mask(self) -> bool:
    """The mask is drawn from a Kumaraswamy (the generator's own, without decouple_x)."""
    return self.post_dist == "kuma" and not self.decouple_x

  def _draw(self, key: PRNGKeyArray, dist: MaskDistribution) -> Float[Array, "B L"]:
    if self._kumaraswamy_mask:
      return kumaraswamy.sample(key, dist.z_alpha, dist.z_beta)
    return bottleneck.beta_sample(key, dist.z_alpha, dist.z_beta)

  def _mean(self, dist: MaskDistribution) -> Float[Array, "B L"]:
    if self._kumaraswamy_mask:
      return kumaraswamy.mean(dist.z_alpha, dist.z_beta)
    return bottleneck.beta_mean(dist.z_alpha, dist.z_beta)

  @nn.compact
  def __call__(self, logits: Float[Array, "B L 2"], signals: Float[Array, "B L S"], *,
               key: PRNGKeyArray | None = None,
               includelist: Bool[Array, "B L"] | None = None
               ) -> tuple[Float[Array, "B L"], Float[Array, ""], MaskDistribution]:
    """(mask, KL, distribution). With `key` (training) the mask is a draw, else the
    deterministic evaluation mask. `includelist`: the include list as a prior track."""
    dist = self.distribution(logits, signals, includelist)
    if not self.post_sample:
      mask = bottleneck.gumbel_straight_through(key, logits, self.gumbel_temp)
      return mask, jnp.zeros((), jnp.float32), dist
    pool = ((lambda m: bottleneck.smooth_max(m, self.pool_mask)) if self.pool_mask
            else (lambda m: m))
    if key is not None:
      z = pool(self._draw(key, dist))
      mask = bottleneck.straight_through(z, self.threshold) if self.hard else z
    else:
      z_mean = self._mean(dist)
      if self.test_top:
        mask = bottleneck.top_k_mask(z_mean, self.test_top, self.test_top_soft)
      elif self.hard:
        mask = bottleneck.hard_threshold(pool(z_mean), self.threshold)
      else:
        mask = z_mean
    return mask, self.kl(dist), dist
