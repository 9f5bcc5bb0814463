"""Every option of the original's Seq2Exp and Caduceus configs is honoured (it changes the
model we build) or refused by name with the reason; none is silently ignored.

The golden files' configs hold every key of the yaml the paper's runs compose
(gene_express_bimamba_MI_RNP.yaml, gene_express_bi_mamba.yaml). Each key is set, one at a
time, to a value other than the golden's; the model built must then differ from the
golden's model, or building must raise UnsupportedConfig naming the key. The keys the
original itself reads only under another option, or never, are listed below with the option
that makes them matter, and are checked with it.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2exp_jax.torch_port import options
from seq2exp_jax.torch_port import reference as ref

# A value other than the golden's, for every key of the original Seq2Exp config.
CHANGED = {
    "d_model": 64, "n_layer": 8, "enc_n_layer": 3, "gen_n_layer": 3, "center_len": 1000,
    "aux_loss_kl": False, "interact": "no_signal", "gen_signal": True, "gumbel_temp": 0.5,
    "prior_signal": "DHS", "prior_beta": "1.0,1.0,1.0", "prior_weight": "1,1,1",
    "prior_scale_factor": 2.0, "merge_peak_mask": True, "post_sample": False,
    "sample_threshold": 0.3, "post_dist": "kuma", "post_hard_dist": True,
    "decouple_x": False, "only_x_sig": True, "use_include_list": True,
    "mask_region_hard": False, "include_alpha": 5.0, "marginal_mean": 0.2,
    "marginal_scale": 2.0, "dist_param_grad": True, "enc_prd_ps": True, "pos_enc": True,
    "pool_mask": 3, "beta_min": 0.5, "z_scale": 2.0, "test_top": True,
    "test_top_percent": 0.3, "test_top_soft": True, "test_soft": False, "test_hard": True,
    "useRNAFeat": False, "norm_epsilon": 1e-6, "seq_range": 8000,
    "ssm_cfg": {"d_state": 8, "d_conv": 4, "expand": 2, "dt_rank": "auto", "dt_min": 0.001,
                "dt_max": 0.1, "dt_init": "random", "dt_scale": 1.0, "dt_init_floor": 1e-4,
                "conv_bias": True, "bias": False, "use_fast_path": False},
    # refused (fixed or inert):
    "use_bio_mask": True, "use_peak_mask": True, "use_mask_model": True,
    "pretrained_model": True, "rms_norm": False, "residual_in_fp32": True,
    "bidirectional": False, "bidirectional_strategy": "ew_multiply",
    "bidirectional_weight_tie": False, "rcps": True, "base_size": 5, "signal_size": 2,
    "rna_feat_dim": 8, "initializer_cfg": {"initializer_range": 0.1},
    "use_gumbel": True, "beta_step": 10, "mask_threshold": 0.5, "mv_size": 3,
    "node_merge_mask": True, "merge_mask": 2, "max_pool_size": 5,
}
# Keys that change nothing alone, in the original too, and the settings that make them
# matter (each checked with them). None: never read by the model (kernel choices, the
# bypassed token embedding, the unused EPInformer encoder block, the loss's own switch).
WITH = {
    "test_top_percent": {"test_top": True, "test_soft": False},
    "test_top_soft": {"test_top": True, "test_soft": False},
    "mask_region_hard": {"use_include_list": True},
    "include_alpha": {"use_include_list": True, "mask_region_hard": False,
                      "prior_weight": "2,2,1,1"},
    "gumbel_temp": {"post_sample": False, "aux_loss_kl": False},
    "seq_range": {"pos_enc": True, "post_hard_dist": True, "test_soft": False,
                  "test_hard": True},
    "pos_enc": {"post_hard_dist": True, "test_soft": False, "test_hard": True},
    "node_merge_range": {"node_merge_mask": True},
    "mask_model": {"use_mask_model": True}, "top_mask_percent": {"use_mask_model": True},
    "pretrained_model_name": {"pretrained_model": True},
    "pretrained_freeze": {"pretrained_model": True},
    "complement_map": {"rcps": True},
}
# Changed together with the key (applied with the change, not to the base): the three
# test-mask flags are exclusive and one must be set; a soft include list needs its weight.
TOGETHER = {
    "post_hard_dist": {"test_soft": False, "test_hard": True},
    "test_hard": {"test_soft": False, "post_hard_dist": True},
    "test_soft": {"test_top": True},
    "test_top": {"test_soft": False},
    "mask_region_hard": {"prior_weight": "2,2,1,1"},  # the include prior's weight
    "post_sample": {"aux_loss_kl": False},  # the original fails with its KL on
}
NEVER_READ = {"vocab_size", "pad_vocab_size_multiple", "fused_add_norm", "encoder",
              "aux_loss_con"}
CHANGED.update({"node_merge_range": 10, "mask_model": "x.ckpt", "top_mask_percent": 0.1,
                "pretrained_model_name": "other", "pretrained_freeze": False,
                "complement_map": {"0": 3}})


def _seq2exp_config(data_dir):
  return json.loads((data_dir / "d_seq2exp_soft.json").read_text())


def _build(config, cfg):
  return ref.model_from_config(dict(config, caduceus_config=cfg))


def _fingerprint(model) -> str:
  """The built module's fields, and the kl weight: what decides its behaviour."""
  return repr(model.module) + f" kl={model.kl_weight}"


def test_every_option_is_honoured_or_refused_by_name(data_dir):
  config = _seq2exp_config(data_dir)
  golden_cfg = config["caduceus_config"]
  assert set(golden_cfg) <= set(CHANGED) | NEVER_READ, sorted(set(golden_cfg) - set(CHANGED))
  golden = _fingerprint(_build(config, golden_cfg))
  honoured, refused = [], []
  for key in sorted(set(golden_cfg) - NEVER_READ):
    cfg = dict(golden_cfg, **WITH.get(key, {}))
    try:
      base = _fingerprint(_build(config, cfg))
    except options.UnsupportedConfig as e:  # the enabling option itself is refused
      assert any(k in str(e) for k in WITH[key]), (key, str(e))
      refused.append(key)
      continue
    cfg.update({key: CHANGED[key]}, **TOGETHER.get(key, {}))
    try:
      built = _fingerprint(_build(config, cfg))
    except options.UnsupportedConfig as e:
      assert key in str(e), (key, str(e))
      refused.append(key)
      continue
    assert built != base, f"caduceus_config.{key} was accepted and changed nothing"
    honoured.append(key)
  # The options the issue names are honoured, not refused.
  for key in ("test_top", "test_top_soft", "test_top_percent", "prior_signal", "only_x_sig",
              "use_include_list", "mask_region_hard", "include_alpha", "decouple_x",
              "post_dist", "merge_peak_mask", "pool_mask", "interact", "useRNAFeat",
              "dist_param_grad", "post_sample"):
    assert key in honoured, key
  assert {"use_bio_mask", "use_gumbel", "max_pool_size"} <= set(refused)
  assert golden == _fingerprint(_build(config, golden_cfg))


def test_unknown_option_is_refused(data_dir):
  config = _seq2exp_config(data_dir)
  cfg = dict(config["caduceus_config"], use_gumble=True)
  with pytest.raises(options.UnsupportedConfig, match="use_gumble: not an option"):
    _build(config, cfg)


@pytest.mark.parametrize("key,value", [("interact", "no_signal"), ("useRNAFeat", False),
                                       ("use_bio_mask", True)])
def test_caduceus_baseline_options(data_dir, key, value):
  config = json.loads((data_dir / "f_geneexp_bimamba.json").read_text())
  cfg = dict(config["caduceus_config"], **{key: value})
  if key == "use_bio_mask":
    with pytest.raises(options.UnsupportedConfig, match="use_bio_mask"):
      _build(config, cfg)
    return
  model = _build(config, cfg).module
  assert model != _build(config, config["caduceus_config"]).module
  assert (model.use_signals, model.use_rna_feat) == (
      key != "interact", key != "useRNAFeat")


def test_learned_prior_constants_are_imported(data_dir):
  """dist_param_grad: the state_dict's prior_weights / signal_betas become params."""
  case = ref.GoldenCase.load(data_dir / "d_seq2exp_soft.npz")
  cfg = dict(case.config["caduceus_config"], dist_param_grad=True)
  model = _build(case.config, cfg)
  state = dict(case.params, signal_betas=np.array([1.0, 0.5, 2.0], np.float32))
  params = ref.flax_params(model, state, "d")
  np.testing.assert_array_equal(params["bottleneck"]["signal_betas"], [1.0, 0.5, 2.0])
  inputs = {k: jnp.asarray(v) for k, v in case.inputs.items()}
  out = jax.jit(lambda p: ref.forward(model, p, inputs))(params)
  plain = ref.model_from_config(case.config)
  want = jax.jit(lambda p: ref.forward(plain, p, inputs))(ref.flax_params(plain, case.params))
  assert not np.allclose(out["z_beta"], want["z_beta"])  # the learned betas are read
