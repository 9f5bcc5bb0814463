"""Every option of the original's model configs, and what our port does with it.

The original's `GeneBiMambaMIRNP` (Seq2Exp) and `GeneExpBiMamba` (Caduceus with or without
signals) read a `caduceus_config` (configs/model/gene_express_bimamba_MI_RNP.yaml and
gene_express_bi_mamba.yaml in divelab/AIRS OpenBio/Seq2Exp). Each of its keys is, here:

* honoured: mapped onto a field of our model (`seq2exp_from_config`, `geneexp_from_config`);
* fixed: only the value of the paper's runs is implemented; another value is refused by
  name with the reason (`FIXED`);
* inert: the original itself never reads it (or reads it only on a path it never takes);
  any value but the yaml's is refused by name, so that no run looks as if it used it
  (`INERT`).

A key of none of the three is refused as unknown. A key missing from the JSON takes the
value of the yaml the paper's runs compose (not CaduceusConfig's Python default).
"""

from __future__ import annotations

from typing import Any, Mapping

from data_pipeline.batch import NUM_RNA_FEATURES, NUM_SIGNALS
from data_pipeline.errors import ConfigError
from seq2exp_jax.model.baselines import GeneExpModel
from seq2exp_jax.model.beta_mask import BetaMask
from seq2exp_jax.model.seq2exp import Seq2Exp
from seq2exp_jax.model.ssm_config import SSMConfig


class UnsupportedConfig(ConfigError):
  """The original's configuration uses an option this port does not implement."""


NO_EFFECT = "the original reads it nowhere: it has no effect there"
GUMBEL_ONLY = ("read only by gumbel_softmax_threshold, which GeneBiMambaMIRNP never calls: "
               "no effect in the original")
# key: (the only value implemented, why another is refused)
FIXED: dict[str, tuple[Any, str]] = {
    "use_bio_mask": (False, "the EPInformer candidate-element mask (bio_mask) is not stored "
                     "by build-data; the data-driven fixed-mask rows are experiments/"
                     "macs3_mask.py and seq2exp_retrain_top10.py"),
    "use_peak_mask": (False, "a predictor on the fixed MACS3-peak mask is experiments/"
                      "macs3_mask.py (mask.source='peaks'); train or convert it there"),
    "use_mask_model": (False, "a predictor on the top of a trained generator's mask is "
                       "experiments/seq2exp_retrain_top10.py (mask.source='generator_top', "
                       "reading that run's workdir)"),
    "pretrained_model": (False, "it downloads a HuggingFace Caduceus; convert its weights "
                         "with convert-torch instead"),
    "rms_norm": (True, "our blocks use RMSNorm"),
    "residual_in_fp32": (False, "our residual stream is in the compute dtype"),
    "bidirectional": (True, "Caduceus is bidirectional here"),
    "bidirectional_strategy": ("add", "the two directions are added"),
    "bidirectional_weight_tie": (True, "the two directions share in/out projections"),
    "rcps": (False, "reverse-complement equivariance is not implemented"),
    "base_size": (4, "the DNA is one-hot A, C, G, T"),
    "signal_size": (NUM_SIGNALS, "the data sets carry H3K27ac, DNase and Hi-C"),
    "rna_feat_dim": (NUM_RNA_FEATURES, "the data sets carry 8 mRNA features + promoter "
                     "activity"),
    "initializer_cfg": ({"initializer_range": 0.02, "rescale_prenorm_residual": True,
                         "n_residuals_per_layer": 1}, "our init is the original's default"),
}
INERT: dict[str, tuple[Any, str]] = {
    "use_gumbel": (False, NO_EFFECT + " (its Gumbel mask is post_sample=False)"),
    "beta_step": (200, NO_EFFECT),
    "mask_threshold": (0.0, NO_EFFECT),
    "mv_size": (1, GUMBEL_ONLY),
    "node_merge_mask": (False, GUMBEL_ONLY),
    "merge_mask": (0, NO_EFFECT),
    "max_pool_size": (0, "the original computes smooth_max of the prior's alpha and discards "
                      "the result: no effect there"),
}
# Honoured keys, and keys read only when another is set (test_top_percent with test_top,
# node_merge_range with node_merge_mask, ...), or never by the model (vocab_size and
# pad_vocab_size_multiple: the embedding is bypassed; fused_add_norm: a kernel choice with
# the same numerics; the EPInformer `encoder` block; n_layer: init scaling only).
HONOURED_SEQ2EXP = frozenset({
    "d_model", "n_layer", "enc_n_layer", "gen_n_layer", "center_len", "aux_loss_kl",
    "aux_loss_con", "pretrained_model_name", "pretrained_freeze", "interact", "gen_signal",
    "gumbel_temp", "node_merge_range", "prior_signal", "prior_beta", "prior_weight",
    "prior_scale_factor", "merge_peak_mask", "post_sample", "sample_threshold", "post_dist",
    "post_hard_dist", "decouple_x", "only_x_sig", "use_include_list", "mask_region_hard",
    "include_alpha", "marginal_mean", "marginal_scale", "dist_param_grad", "mask_model",
    "top_mask_percent", "enc_prd_ps", "pos_enc", "pool_mask", "beta_min", "z_scale",
    "test_top", "test_top_percent", "test_top_soft", "test_soft", "test_hard", "useRNAFeat",
    "vocab_size", "ssm_cfg", "fused_add_norm", "pad_vocab_size_multiple", "norm_epsilon",
    "complement_map", "encoder", "seq_range"})
HONOURED_GENEEXP = frozenset({
    "d_model", "n_layer", "interact", "center_len", "pretrained_model_name",
    "pretrained_freeze", "down_n_layer", "useRNAFeat", "vocab_size", "ssm_cfg",
    "fused_add_norm", "pad_vocab_size_multiple", "norm_epsilon", "complement_map",
    "seq_range"})


def check_keys(cfg: Mapping[str, Any], honoured: frozenset, where: str) -> None:
  """Refuses unknown keys and fixed/inert keys at another value, naming them."""
  for key, value in cfg.items():
    if key in FIXED or key in INERT:
      want, why = FIXED.get(key) or INERT[key]
      if value != want:
        raise UnsupportedConfig(f"{where}.{key}={value!r}: only {want!r} ({why})")
    elif key not in honoured:
      raise UnsupportedConfig(f"{where}.{key}: not an option of the original's model (a typo,"
                              " or a version of the original this port does not know)")


def ssm_config(ssm_cfg: Mapping[str, Any], d_model: int, **fields: Any) -> SSMConfig:
  """Our SSMConfig for the original's `ssm_cfg` (mamba-ssm Mamba keyword arguments)."""
  dt_rank = ssm_cfg.get("dt_rank", "auto")
  if ssm_cfg.get("dt_init", "random") != "random" or ssm_cfg.get("bias", False) \
      or not ssm_cfg.get("conv_bias", True):
    raise UnsupportedConfig(f"ssm_cfg {dict(ssm_cfg)}: only dt_init='random', bias=False, "
                            "conv_bias=True are implemented")
  return SSMConfig(d_model=d_model, d_state=ssm_cfg.get("d_state", 16),
                   d_conv=ssm_cfg.get("d_conv", 4), expand=ssm_cfg.get("expand", 2),
                   dt_rank=None if dt_rank == "auto" else int(dt_rank),
                   dt_min=ssm_cfg.get("dt_min", 1e-3), dt_max=ssm_cfg.get("dt_max", 0.1),
                   dt_init_floor=ssm_cfg.get("dt_init_floor", 1e-4), **fields)


def _floats(text) -> tuple[float, ...]:
  return tuple(float(v) for v in (text.split(",") if isinstance(text, str) else text))


def _interact(cfg: Mapping[str, Any], where: str) -> bool:
  """use_signals for the original's `interact`."""
  interact = cfg.get("interact", "concat")
  if interact not in ("concat", "no_signal"):
    raise UnsupportedConfig(f"{where}.interact={interact!r}: expected 'concat' or 'no_signal'")
  return interact == "concat"


def _eval_mask(cfg: Mapping[str, Any], where: str) -> dict[str, Any]:
  """BetaMask's hard / test_top fields for the original's train and test mask flags."""
  soft, hard, top = (bool(cfg.get(k, d)) for k, d in
                     (("test_soft", True), ("test_hard", False), ("test_top", False)))
  if soft + hard + top != 1:
    raise UnsupportedConfig(f"{where}: exactly one of test_soft, test_hard and test_top must "
                            f"be set (got {soft}, {hard}, {top}): the original asserts at most "
                            "one, and with none its evaluation has no mask")
  train_hard = bool(cfg.get("post_hard_dist", False))
  if (soft or hard) and train_hard != hard:
    raise UnsupportedConfig(f"{where}: post_hard_dist={train_hard} with test_hard={hard}: our "
                            "mask is hard (straight-through draw, thresholded mean) in "
                            "training and evaluation alike, or soft in both")
  fields = {"hard": train_hard}
  if top:
    fields.update(test_top=float(cfg.get("test_top_percent", cfg.get("marginal_mean", 0.1))),
                  test_top_soft=bool(cfg.get("test_top_soft", False)))
  elif cfg.get("test_top_soft"):
    raise UnsupportedConfig(f"{where}.test_top_soft=True without test_top: no effect in the "
                            "original")
  return fields


def seq2exp_from_config(cfg: Mapping[str, Any]) -> Seq2Exp:
  """Our Seq2Exp for an original `caduceus_config` of GeneBiMambaMIRNP."""
  where = "caduceus_config"
  check_keys(cfg, HONOURED_SEQ2EXP, where)
  post_sample = bool(cfg.get("post_sample", True))
  if not post_sample and cfg.get("aux_loss_kl", True):
    raise UnsupportedConfig(f"{where}: post_sample=False with aux_loss_kl=True: the "
                            "original's KL then reads a distribution its Gumbel path never "
                            "builds (it fails); set aux_loss_kl=False")
  prior_beta = _floats(cfg.get("prior_beta", "1.5,0.2,1.0"))
  if len(prior_beta) != NUM_SIGNALS:
    raise UnsupportedConfig(f"{where}.prior_beta={cfg['prior_beta']!r}: expected one value "
                            f"per signal track ({NUM_SIGNALS})")
  include = ("none" if not cfg.get("use_include_list", False)
             else "hard" if cfg.get("mask_region_hard", True) else "prior")
  weights = _floats(cfg.get("prior_weight", "2,2,1"))
  if len(weights) != NUM_SIGNALS + (include == "prior"):
    raise UnsupportedConfig(f"{where}.prior_weight={cfg.get('prior_weight')!r}: expected one "
                            f"weight per signal track ({NUM_SIGNALS}), and one more for the "
                            "include list with use_include_list and mask_region_hard=False")
  backbone = ssm_config(cfg.get("ssm_cfg", {}), cfg["d_model"],
                        norm_epsilon=float(cfg.get("norm_epsilon", 1e-5)),
                        init_n_layer=int(cfg.get("n_layer", 64)))
  if backbone.expand != 2 or backbone.d_conv != 4 or backbone.dt_rank is not None:
    raise UnsupportedConfig(f"{where}.ssm_cfg: Seq2Exp uses expand=2, d_conv=4, "
                            "dt_rank='auto'")
  shared = bool(cfg.get("enc_prd_ps", False))
  pos_enc = bool(cfg.get("pos_enc", False))
  try:
    bottleneck = BetaMask(
        prior_scale_factor=float(cfg["prior_scale_factor"]), prior_beta=prior_beta,
        prior_weight=weights[:NUM_SIGNALS], include_weight=(weights[NUM_SIGNALS:] or (1.0,))[0],
        beta_min=float(cfg["beta_min"]), z_scale=float(cfg.get("z_scale", 1.0)),
        marginal_mean=float(cfg["marginal_mean"]),
        marginal_scale=float(cfg["marginal_scale"]),
        threshold=float(cfg.get("sample_threshold", 0.5)),
        prior_signal=cfg.get("prior_signal", "all"),
        include_alpha=float(cfg.get("include_alpha", 10.0)),
        only_x_sig=bool(cfg.get("only_x_sig", False)),
        decouple_x=bool(cfg.get("decouple_x", True)), post_dist=cfg.get("post_dist", "beta"),
        post_sample=post_sample, gumbel_temp=float(cfg.get("gumbel_temp", 1.0)),
        pool_mask=int(cfg.get("pool_mask", 0)),
        dist_param_grad=bool(cfg.get("dist_param_grad", False)), **_eval_mask(cfg, where))
    # The original couples two ideas to pos_enc: the position embedding and the packing of
    # the selected positions; ours are two fields.
    return Seq2Exp(
        backbone=backbone, n_gen_layer=cfg["gen_n_layer"],
        n_enc_layer=cfg["gen_n_layer"] if shared else cfg["enc_n_layer"],
        center_len=cfg["center_len"], bottleneck=bottleneck, share_generator=shared,
        gen_signal=bool(cfg.get("gen_signal", False)), pos_enc=pos_enc,
        seq_range=int(cfg.get("seq_range", 200_000)) if pos_enc else None,
        pack_selected=pos_enc, use_signals=_interact(cfg, where),
        use_rna_feat=bool(cfg.get("useRNAFeat", True)), include_list=include,
        merge_peak_mask=bool(cfg.get("merge_peak_mask", False)))
  except ValueError as e:  # our modules' own checks, named by their fields
    raise UnsupportedConfig(f"{where}: {e}") from e


def geneexp_from_config(cfg: Mapping[str, Any]) -> GeneExpModel:
  """Our GeneExpModel for an original `caduceus_config` of GeneExpBiMamba."""
  where = "caduceus_config"
  check_keys(cfg, HONOURED_GENEEXP, where)
  backbone = ssm_config(cfg.get("ssm_cfg", {}), cfg["d_model"],
                        norm_epsilon=float(cfg.get("norm_epsilon", 1e-5)))
  return GeneExpModel(backbone=backbone, n_layer=cfg["n_layer"], center_len=cfg["center_len"],
                      use_signals=_interact(cfg, where),
                      use_rna_feat=bool(cfg.get("useRNAFeat", True)))
