"""Seq2Exp (GeneBiMambaMIRNP): a generator proposes a Beta mask per position, the signals
add a second Beta without learned weights, a mask is drawn from their combination, and a
predictor reads only the masked input (SPEC §2; golden README "GeneBiMambaMIRNP forward").

Two published runs:
* soft: generator on sequence embeddings only, soft mask (Beta mean) at test, predictor on
  `(e_seq + e_sig) * mask` over the whole window;
* hard: generator = predictor (`share_generator`), learned position embedding, hard mask
  (mean >= threshold) at test and a straight-through mask in training, and the predictor
  reads only the selected positions packed to the front (`pack_selected`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from seq2exp_jax.model import bottleneck
from seq2exp_jax.model import scan as scan_lib
from seq2exp_jax.model.scan import torch_softplus
from seq2exp_jax.model.caduceus import Caduceus
from seq2exp_jax.model.heads import ExpressionHead, centre_mean, centre_start, embedding_dense

Dtype = Any


@flax.struct.dataclass
class Seq2ExpOutput:
  """Everything one forward pass returns (B batch, L positions, S signal tracks).

  prediction (B, 1); mask (B, L) after the blacklist/promoter overrides; post_alpha,
  post_beta (B, L): the generator's Beta; prior_alpha (B, L, S), prior_beta (S,): the
  signal priors; z_alpha, z_beta (B, L): the combined Beta; kl, continuity: scalars;
  overflow (B,) int32: selected positions dropped by a too-small packing capacity (hard).
  """

  prediction: jax.Array
  mask: jax.Array
  post_alpha: jax.Array | None
  post_beta: jax.Array | None
  prior_alpha: jax.Array | None
  prior_beta: jax.Array | None
  z_alpha: jax.Array | None
  z_beta: jax.Array | None
  kl: jax.Array
  continuity: jax.Array
  overflow: jax.Array


def apply_overrides(mask, blacklist, center_len: int):
  """Blacklisted positions -> 0, then the centre `center_len` positions -> 1 (promoter wins).

  mask: (B, L) float; blacklist: (B, L) bool or None. Returns (B, L) float32.
  """
  mask = mask.astype(jnp.float32)
  if blacklist is not None:
    mask = jnp.where(blacklist, 0.0, mask)
  length = mask.shape[1]
  c0 = centre_start(length, center_len)
  promoter = (jnp.arange(length) >= c0) & (jnp.arange(length) < c0 + center_len)
  return jnp.where(promoter[None, :], 1.0, mask)


def continuity_loss(mask):
  """mean_b sum_t |m_t - m_{t-1}| / (L + 1) (the original pads with the edge values)."""
  length = mask.shape[1]
  return jnp.mean(jnp.sum(jnp.abs(jnp.diff(mask, axis=1)), axis=1) / (length + 1))


def pack_selected(rows, selected, capacity: int):
  """Move the selected rows of each sample to the front, in order, zero-padded.

  Args:
    rows: (B, L, D). selected: (B, L) bool. capacity: static output length C.
  Returns:
    packed (B, C, D); the number of selected rows that did not fit, (B,) int32.
  """
  dest = jnp.cumsum(selected, axis=1) - 1  # (B, L)
  dest = jnp.where(selected & (dest < capacity), dest, capacity)  # out of range -> dropped

  def one(r, d):
    return jnp.zeros((capacity, r.shape[-1]), r.dtype).at[d].set(r, mode="drop")

  count = jnp.sum(selected, axis=1, dtype=jnp.int32)
  return jax.vmap(one)(rows, dest), jnp.maximum(count - capacity, 0)


def packed_promoter_mean(hidden, mask, center_len: int):
  """Mean over the promoter rows of a packed sequence.

  The promoter starts at sum(mask[:, :L/2]) - center_len/2 in packed coordinates (the
  original's index arithmetic, which assumes even L and center_len).
  hidden: (B, C, D); mask: (B, L) with exact 1.0 at selected positions. Returns (B, D).
  """
  half = mask.shape[1] // 2
  start = (jnp.sum(mask[:, :half] == 1.0, axis=1) - center_len // 2).astype(jnp.int32)

  def one(h, s):
    return jnp.mean(jax.lax.dynamic_slice_in_dim(h, s, center_len, axis=0), axis=0)

  return jax.vmap(one)(hidden.astype(jnp.float32), start)


class Seq2Exp(nn.Module):
  """Seq2Exp. Attributes mirror the original's config names where they exist.

  mask_source: "learned" (the generator) or "input" (a fixed mask given to `__call__`:
    MACS3 peaks, or the top-k of a trained generator; the generator is then not built).
  capacity: static packed length for the hard run's predictor; None = L (nothing is ever
    dropped). `__call__(capacity=...)` overrides it, e.g. with the batch maximum for exact
    parity with the original, which pads to the longest selection in the batch.
  init_n_layer: the n_layer of mamba-ssm's out_proj rescale; 64 in the original (see
    golden README).
  """

  d_model: int = 128
  n_gen_layer: int = 4
  n_enc_layer: int = 4
  center_len: int = 2000
  signal_size: int = 3
  mask_source: str = "learned"
  share_generator: bool = False
  gen_signal: bool = False
  pos_enc: bool = False
  seq_range: int = 200_000
  prior_scale_factor: float = 10.0
  prior_beta: tuple[float, ...] = (1.5, 0.2, 1.0)
  prior_weight: tuple[float, ...] = (2.0, 2.0, 1.0)
  beta_min: float = 1.0
  z_scale: float = 1.0
  marginal_mean: float = 0.1
  marginal_scale: float = 10.0
  hard: bool = False
  threshold: float = 0.5
  capacity: int | None = None
  init_n_layer: int = 64
  d_state: int = 16
  norm_epsilon: float = 1e-5
  scan_method: str = "chunked"
  chunk_size: int = scan_lib.DEFAULT_CHUNK_SIZE
  remat: bool = False
  dtype: Dtype = jnp.float32

  def _backbone(self, n_layer: int, name: str) -> Caduceus:
    return Caduceus(d_model=self.d_model, n_layer=n_layer, d_state=self.d_state,
                    norm_epsilon=self.norm_epsilon, init_n_layer=self.init_n_layer,
                    scan_method=self.scan_method, chunk_size=self.chunk_size,
                    remat=self.remat, dtype=self.dtype, name=name)

  def signal_prior(self, signals):
    """The signals' Beta per track. signals: (B, L, S) -> alpha (B, L, S), beta (S,)."""
    k, b_min = self.prior_scale_factor, self.beta_min
    alpha = (signals.astype(jnp.float32) + b_min) * k + 1e-8
    beta = (jnp.asarray(self.prior_beta, jnp.float32) + b_min) * k
    return alpha, beta

  def prior_mixing_weights(self):
    """softmax(log(w / sum w)) = w / sum w, (S,), computed as the original does."""
    w = jnp.asarray(self.prior_weight, jnp.float32)
    return jax.nn.softmax(jnp.log(w / jnp.sum(w)))

  @nn.compact
  def __call__(self, dna, signals, blacklist, rna_feat, *, train: bool = False,
               mask=None, capacity: int | None = None) -> Seq2ExpOutput:
    """Forward pass.

    Args:
      dna: (B, L, 4) one-hot (N = all zeros). signals: (B, L, S). blacklist: (B, L) bool or
        None. rna_feat: (B, F).
      train: draw the mask (needs the 'mask' RNG stream) instead of the deterministic eval
        mask.
      mask: (B, L) fixed mask, only with mask_source="input".
      capacity: overrides the packing capacity of the hard run.
    """
    length = dna.shape[1]
    e_seq = embedding_dense(self.d_model, self.dtype, "seq_input_layer")(dna)
    if self.pos_enc:
      if length > self.seq_range:
        raise ValueError(f"window {length} is longer than the position embedding "
                         f"(seq_range={self.seq_range})")
      pos = self.param("pos_emb", nn.initializers.zeros, (self.seq_range, self.d_model))
      e_seq = e_seq + pos[:length].astype(self.dtype)
    e_sig = embedding_dense(self.d_model, self.dtype, "signal_input_layer")(signals)
    predictor_in = e_seq + e_sig
    generator = self._backbone(self.n_gen_layer, "generator") \
        if self.mask_source == "learned" or self.share_generator else None

    dist = {}
    kl = jnp.zeros((), jnp.float32)
    if self.mask_source == "learned":
      gen_in = predictor_in if (self.gen_signal or self.share_generator) else e_seq
      logits = embedding_dense(2, jnp.float32, "mask_output")(
          generator(gen_in).astype(jnp.float32))
      # Column 1 -> alpha, column 0 -> beta.
      post_alpha = torch_softplus(logits[..., 1]) + self.beta_min + 1e-8
      post_beta = torch_softplus(logits[..., 0]) + self.beta_min + 1e-8
      prior_alpha, prior_beta = self.signal_prior(signals)
      w = self.prior_mixing_weights()
      z_alpha = self.z_scale * (post_alpha + jnp.einsum("bls,s->bl", prior_alpha, w))
      z_beta = self.z_scale * (post_beta + jnp.sum(prior_beta * w))
      if train:
        z = bottleneck.beta_sample(self.make_rng("mask"), z_alpha, z_beta)
        m = bottleneck.straight_through(z, self.threshold) if self.hard else z
      else:
        z_mean = bottleneck.beta_mean(z_alpha, z_beta)
        m = bottleneck.hard_threshold(z_mean, self.threshold) if self.hard else z_mean
      m_alpha, m_beta = bottleneck.marginal_concentrations(self.marginal_mean,
                                                          self.marginal_scale)
      kl = jnp.mean(bottleneck.beta_kl(z_alpha, z_beta, m_alpha, m_beta))
      dist = dict(post_alpha=post_alpha, post_beta=post_beta, prior_alpha=prior_alpha,
                  prior_beta=prior_beta, z_alpha=z_alpha, z_beta=z_beta)
    elif self.mask_source == "input":
      if mask is None:
        raise ValueError("mask_source='input' needs the mask argument, (B, L)")
      m = mask
    else:
      raise ValueError(f"unknown mask_source {self.mask_source!r}: 'learned' or 'input'")
    m = apply_overrides(m, blacklist, self.center_len)

    encoder = generator if self.share_generator else self._backbone(self.n_enc_layer,
                                                                     "encoder")
    overflow = jnp.zeros((dna.shape[0],), jnp.int32)
    if self.pos_enc:
      cap = capacity or self.capacity or length
      packed, overflow = pack_selected(predictor_in, m == 1.0, cap)
      pooled = packed_promoter_mean(encoder(packed), m, self.center_len)
    else:
      hidden = encoder(predictor_in * m[..., None].astype(self.dtype))
      pooled = centre_mean(hidden, self.center_len)
    prediction = ExpressionHead(self.d_model, dtype=self.dtype, name="pToExpr")(pooled,
                                                                                rna_feat)
    return Seq2ExpOutput(prediction=prediction, mask=m, kl=kl, continuity=continuity_loss(m),
                         overflow=overflow, **{k: dist.get(k) for k in (
                             "post_alpha", "post_beta", "prior_alpha", "prior_beta",
                             "z_alpha", "z_beta")})
