"""Seq2Exp (the original's GeneBiMambaMIRNP): a generator proposes a Beta mask per position,
the signals add a second Beta without learned weights, a mask is drawn from their
combination (`BetaMask`), and a predictor reads only the masked input. The method is
written out in docs/method.md, "The model"; tests/data/GOLDEN_README.md, "GeneBiMambaMIRNP
forward", follows the original step by step.

    e_seq = Linear(4 -> D)(dna) (+ pos_emb)      e_sig = Linear(S -> D)(signals)
    generator:  logits = Linear(D -> 2)(backbone(e_seq, or e_seq + e_sig))
    mask:       BetaMask(logits, signals), or a fixed mask given to the call;
                then blacklist -> 0, promoter -> 1
    predictor:  backbone((e_seq + e_sig) * mask) -> promoter mean, or with `pack_selected`
                backbone(the selected positions packed to the front) -> packed promoter mean
    prediction: ExpressionHead(pooled, rna_feat)

Two published runs (experiments/seq2exp_soft.py, seq2exp_hard.py):
* soft: generator on sequence embeddings only, soft mask (Beta mean) at test, predictor on
  the whole masked window;
* hard: generator = predictor (`share_generator`), learned position embedding (`pos_enc`),
  hard mask (mean >= threshold) at test and a straight-through mask in training, and the
  predictor reads only the selected positions (`pack_selected`).
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from seq2exp_jax.model.backbones import BackboneConfig, build_backbone
from seq2exp_jax.model.beta_mask import BetaMask
from seq2exp_jax.model.heads import ExpressionHead
from seq2exp_jax.model.layers import SIGNAL_TRANSFORMS, input_dense, transform_signals
from seq2exp_jax.model.losses import continuity_loss
from seq2exp_jax.model.outputs import ModelOutput
from seq2exp_jax.model.packing import pack_selected, packed_promoter_mean
from seq2exp_jax.model.pooling import POOLS, WindowPool
from seq2exp_jax.model.promoter import apply_region_rules
from seq2exp_jax.model.ssm_config import SSMConfig

INCLUDE_LISTS = ("none", "hard", "prior")


class Seq2Exp(nn.Module):
  """Seq2Exp. Field names follow the original's config where it has one.

  Attributes:
    backbone: the generator's and predictor's backbone config (`backbones.BACKBONES`); its
      d_model and dtype are the model's. The original uses Caduceus with init_n_layer 64.
    n_gen_layer, n_enc_layer: generator and predictor depth.
    center_len: the promoter window the head pools and every mask keeps.
    bottleneck: the learned mask; None means the mask is given to every call (MACS3 peaks,
      the top of a trained generator's mask) and no generator is built.
    share_generator: the predictor is the generator (one backbone; it reads e_seq + e_sig).
    gen_signal: the generator reads e_seq + e_sig instead of e_seq.
    pos_enc: add a learned position embedding (seq_range or the window, D) to e_seq.
    seq_range: the position embedding's length; None is the window of the first call.
    pack_selected: the predictor reads only the selected positions (mask == 1), packed to
      the front; needs a binary mask (`bottleneck.hard` or a fixed mask).
    capacity: the packed length; None is the window (nothing is ever dropped). A call's
      `capacity=` overrides it (the batch maximum gives exact parity with the original).
    inert_padding: the packed predictor never reads the padding after a row's selected
      positions (the backbone's reverse direction starts at the row's last one), so any
      capacity >= the row's count gives the same numbers as the window: the capacity is
      then a pure compute setting (packing.capacity). False is the original: the
      bidirectional encoder also reads the padding, so outputs depend on the capacity (the
      original's batch maximum). Needs a Mamba/Caduceus backbone.
    pool: what the head reads (`pooling.WindowPool`): "centre" (the promoter mean, the
      original), "centre+contact" (+ the predictor's hidden states outside the promoter
      weighted by mask x Hi-C contact) or "centre+abc" (+ the log of a mask x contact
      weighted sum of non-negative per-position scores); both options need
      pack_selected=False.
    contact_track: the signal track holding log10(1 + Hi-C contact) (for the pool options).
    signal_transform: what the signal Linear reads: "none" (the raw tracks, the original)
      or "log1p" (`layers.transform_signals`); the signal prior always reads the raw tracks.
    motif_stem: 0 (the original) or the width K of a convolution over the one-hot DNA added
      to e_seq (D filters, `motif_stem` bp, centred): one filter can score a whole motif
      unit (the synthetic grammar's GATA1 + 4 bp + KLF1 spans 23 bp).
    The original's input options (docs/method.md, "Options of the original"):
    use_signals: False is the original's `interact='no_signal'`: no signal Linear, the
      generator and the predictor read e_seq alone (the prior still reads the signals).
    use_rna_feat: False is `useRNAFeat=False`: the head reads the pooled embedding alone.
    include_list: "none"; "hard" (`use_include_list` with `mask_region_hard`): the include
      list's positions are set to 1 after the blacklist's to 0; "prior" (`mask_region_hard=
      False`): the include list is one more track of the bottleneck's prior. Both need the
      call's `includelist`.
    merge_peak_mask: the signals are zeroed outside the MACS3 peaks (the call's `peaks`)
      before anything reads them (`merge_peak_mask`).
  """

  backbone: BackboneConfig = SSMConfig(init_n_layer=64)
  n_gen_layer: int = 4
  n_enc_layer: int = 4
  center_len: int = 2000
  bottleneck: BetaMask | None = dataclasses.field(default_factory=BetaMask)
  share_generator: bool = False
  gen_signal: bool = False
  pos_enc: bool = False
  seq_range: int | None = None
  pack_selected: bool = False
  capacity: int | None = None
  inert_padding: bool = False
  pool: str = "centre"
  contact_track: int = 2
  signal_transform: str = "none"
  motif_stem: int = 0
  use_signals: bool = True
  use_rna_feat: bool = True
  include_list: str = "none"
  merge_peak_mask: bool = False

  def __post_init__(self):
    learned = self.bottleneck is not None
    rules = [
        (self.n_gen_layer >= 1 and self.n_enc_layer >= 1,
         f"n_gen_layer={self.n_gen_layer}, n_enc_layer={self.n_enc_layer}: expected >= 1"),
        (self.center_len >= 1, f"center_len={self.center_len}: expected >= 1"),
        (learned or not self.share_generator,
         "share_generator=True needs a learned mask (bottleneck is None: no generator)"),
        (learned or not self.gen_signal,
         "gen_signal=True needs a learned mask (bottleneck is None: no generator)"),
        (not self.share_generator or self.n_enc_layer == self.n_gen_layer,
         f"share_generator=True: the predictor is the generator, so n_enc_layer="
         f"{self.n_enc_layer} must equal n_gen_layer={self.n_gen_layer}"),
        (not self.pack_selected or not learned or self.bottleneck.binary,
         "pack_selected=True with a soft learned mask (bottleneck.hard=False, or "
         "test_top_soft) would pack only the positions whose mask is exactly 1, the "
         "promoter"),
        (self.include_list in INCLUDE_LISTS,
         f"include_list={self.include_list!r}: expected one of {INCLUDE_LISTS}"),
        (self.include_list != "prior" or learned,
         "include_list='prior' is a track of the learned mask's prior: it needs a bottleneck"),
        (self.use_signals or self.pool == "centre",
         f"pool={self.pool!r} reads the Hi-C track: it needs use_signals=True"),
        (not self.pack_selected or self.center_len % 2 == 0,
         f"pack_selected=True needs an even center_len (got {self.center_len})"),
        (self.seq_range is None or self.pos_enc,
         f"seq_range={self.seq_range} sets the position embedding: it needs pos_enc=True"),
        (self.capacity is None or self.pack_selected,
         f"capacity={self.capacity} sets the packed length: it needs pack_selected=True"),
        (self.capacity is None or self.capacity >= self.center_len,
         f"capacity={self.capacity}: expected >= center_len={self.center_len}"),
        (not self.inert_padding or (self.pack_selected and isinstance(self.backbone,
                                                                       SSMConfig)),
         "inert_padding=True concerns the packed predictor of a Mamba/Caduceus backbone: it "
         "needs pack_selected=True and an SSM backbone"),
        (self.pool in POOLS, f"pool={self.pool!r}: expected one of {POOLS}"),
        (self.pool == "centre" or not self.pack_selected,
         f"pool={self.pool!r} reads the whole window: it needs pack_selected=False"),
        (self.signal_transform in SIGNAL_TRANSFORMS,
         f"signal_transform={self.signal_transform!r}: expected one of {SIGNAL_TRANSFORMS}"),
        (self.motif_stem >= 0, f"motif_stem={self.motif_stem}: expected a width >= 0"),
    ]
    problems = [message for ok, message in rules if not ok]
    if problems:
      raise ValueError("Seq2Exp: " + "; ".join(problems))
    super().__post_init__()

  @property
  def extra_inputs(self) -> tuple[str, ...]:
    """The Batch fields beyond dna, signals, rna_feat and blacklist that a call needs."""
    return (("includelist",) if self.include_list != "none" else ()) + (
        ("peaks",) if self.merge_peak_mask else ())

  @nn.compact
  def __call__(self, dna: Float[Array, "B L 4"], signals: Float[Array, "B L S"],
               rna_feat: Float[Array, "B F"], blacklist: Bool[Array, "B L"] | None = None, *,
               train: bool = False, mask: Float[Array, "B L"] | None = None,
               capacity: int | None = None, includelist: Bool[Array, "B L"] | None = None,
               peaks: Bool[Array, "B L"] | None = None) -> ModelOutput:
    """Forward pass.

    Args:
      dna: one-hot A, C, G, T (N = all zeros). signals: H3K27ac, DNase, log10(1 + Hi-C).
      rna_feat: mRNA features and promoter activity. blacklist: positions forced to 0.
      train: draw the mask (needs the 'mask' RNG stream) instead of the deterministic eval
        mask.
      mask: the fixed mask, exactly when `bottleneck` is None.
      capacity: overrides the packed length.
      includelist, peaks: the include list and the MACS3 peaks, read only by the
        include_list and merge_peak_mask options (which need them).
    """
    c = self.backbone
    length = dna.shape[1]
    if (mask is None) == (self.bottleneck is None):
      raise ValueError("Seq2Exp: a fixed mask is given exactly when bottleneck is None (got "
                       f"mask={'None' if mask is None else 'an array'}, bottleneck="
                       f"{'None' if self.bottleneck is None else 'BetaMask'})")
    for option, needed, given in (("include_list", self.include_list != "none", includelist),
                                  ("merge_peak_mask", self.merge_peak_mask, peaks)):
      if needed and given is None:
        raise ValueError(f"Seq2Exp: {option} needs the call's "
                         f"{'includelist' if option == 'include_list' else 'peaks'}")
    if self.merge_peak_mask:
      signals = signals * peaks[..., None].astype(signals.dtype)
    e_seq = input_dense(c.d_model, c.dtype, "seq_input_layer")(dna)
    if self.motif_stem:
      e_seq = e_seq + nn.Conv(c.d_model, (self.motif_stem,), padding="SAME", dtype=c.dtype,
                              name="motif_stem")(dna)
    if self.pos_enc:
      rows = self.seq_range or length
      if length > rows:
        raise ValueError(f"Seq2Exp: window {length} is longer than the position embedding "
                         f"(seq_range={rows})")
      pos = self.param("pos_emb", nn.initializers.zeros, (rows, c.d_model))
      e_seq = e_seq + pos[:length].astype(c.dtype)
    predictor_in = e_seq
    if self.use_signals:
      predictor_in = e_seq + input_dense(c.d_model, c.dtype, "signal_input_layer")(
          transform_signals(signals, self.signal_transform, self.contact_track))

    generator = None
    kl = jnp.zeros((), jnp.float32)
    distribution = None
    if self.bottleneck is not None:
      generator = build_backbone(c, self.n_gen_layer, "generator")
      gen_in = predictor_in if (self.gen_signal or self.share_generator) else e_seq
      hidden = generator(gen_in)
      self.sow("intermediates", "generator_out", hidden)
      logits = input_dense(2, jnp.float32, "mask_output")(hidden.astype(jnp.float32))
      self.sow("intermediates", "mask_logits", logits)
      key = self.make_rng("mask") if train else None
      mask, kl, distribution = self.bottleneck(
          logits, signals, key=key,
          includelist=includelist if self.include_list == "prior" else None)
    mask = apply_region_rules(mask, blacklist, self.center_len,
                              includelist if self.include_list == "hard" else None)

    encoder = generator if self.share_generator else build_backbone(
        c, self.n_enc_layer, "encoder")
    overflow = jnp.zeros((dna.shape[0],), jnp.int32)
    if self.pack_selected:
      selected = mask == 1.0
      packed, overflow = pack_selected(predictor_in, selected,
                                       capacity or self.capacity or length)
      if self.inert_padding:  # the rows each sample kept; the padding after them is not read
        hidden = encoder(packed, jnp.sum(selected, axis=1, dtype=jnp.int32) - overflow)
      else:
        hidden = encoder(packed)
      pooled = packed_promoter_mean(hidden, mask, self.center_len)
    else:
      hidden = encoder(predictor_in * mask[..., None].astype(c.dtype))
      pooled = WindowPool(self.pool, self.center_len, self.contact_track, name="pool")(
          hidden, signals, mask)
    prediction = ExpressionHead(c.d_model, dtype=c.dtype, use_rna_feat=self.use_rna_feat,
                                name="pToExpr")(pooled, rna_feat)
    return ModelOutput(prediction=prediction, mask=mask, kl=kl,
                       continuity=continuity_loss(mask), overflow=overflow,
                       distribution=distribution)
