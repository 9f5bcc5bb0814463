"""Run our models on the original code's configs, weights and inputs (golden `.npz` files).

A golden file holds `param/<state_dict key>`, `input/<name>`, `output/<name>` and
`grad/<named_parameters key>`; its JSON sidecar holds the original's configuration
(`module` plus `kwargs` for a bare mixer, or `caduceus_config` for the full models). This
module turns such a configuration into one of our modules, its weights into our params, and
computes every `output/*` under the reference's names and the same loss, so the port can be
checked weight for weight (`seq2exp verify-reference`, tests/test_golden.py).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from seq2exp_jax.torch_port import convert
from seq2exp_jax.model.baselines import GeneExpModel
from seq2exp_jax.model.caduceus import Caduceus
from seq2exp_jax.model.heads import smooth_l1
from seq2exp_jax.model.mamba import BiMamba, Mamba
from seq2exp_jax.model.seq2exp import Seq2Exp

# Options of the original Seq2Exp config that our port implements only at these values.
SEQ2EXP_FIXED_OPTIONS: dict[str, Any] = {
    "post_dist": "beta", "post_sample": True, "decouple_x": True, "prior_signal": "all",
    "use_include_list": False, "use_bio_mask": False, "use_peak_mask": False,
    "merge_peak_mask": False, "use_gumbel": False, "test_top": False, "test_top_soft": False,
    "use_mask_model": False, "interact": "concat", "only_x_sig": False,
    "node_merge_mask": False, "pool_mask": 0, "merge_mask": 0, "useRNAFeat": True,
    "rms_norm": True, "bidirectional": True, "bidirectional_strategy": "add",
    "bidirectional_weight_tie": True, "rcps": False, "pretrained_model": False,
}


class UnsupportedConfig(ValueError):
  """The original's configuration uses an option this port does not implement."""


@dataclasses.dataclass(frozen=True)
class ReferenceModel:
  """One of our modules built for an original configuration.

  kind: "mamba", "bimamba", "caduceus", "seq2exp" or "geneexp".
  shared_encoder: the encoder's weights are the generator's (Seq2Exp-hard).
  kl_weight: weight of the KL term in the loss (Seq2Exp).
  """

  kind: str
  module: nn.Module
  shared_encoder: bool = False
  kl_weight: float = 0.0


def _ssm_settings(ssm_cfg: Mapping[str, Any], d_model: int) -> dict:
  dt_rank = ssm_cfg.get("dt_rank", "auto")
  if ssm_cfg.get("dt_init", "random") != "random" or ssm_cfg.get("bias", False) \
      or not ssm_cfg.get("conv_bias", True):
    raise UnsupportedConfig(f"ssm_cfg {dict(ssm_cfg)}: only dt_init='random', bias=False, "
                            "conv_bias=True are implemented")
  return dict(d_state=ssm_cfg.get("d_state", 16), d_conv=ssm_cfg.get("d_conv", 4),
              expand=ssm_cfg.get("expand", 2),
              dt_rank=None if dt_rank == "auto" else int(dt_rank),
              dt_min=ssm_cfg.get("dt_min", 1e-3), dt_max=ssm_cfg.get("dt_max", 0.1),
              dt_init_floor=ssm_cfg.get("dt_init_floor", 1e-4))


def _floats(text) -> tuple[float, ...]:
  return tuple(float(v) for v in (text.split(",") if isinstance(text, str) else text))


def seq2exp_from_config(cfg: Mapping[str, Any], **overrides) -> Seq2Exp:
  """Our Seq2Exp for an original `caduceus_config` of GeneBiMambaMIRNP."""
  for key, value in SEQ2EXP_FIXED_OPTIONS.items():
    if key in cfg and cfg[key] != value:
      raise UnsupportedConfig(f"caduceus_config.{key}={cfg[key]!r}: only {value!r} is "
                              "implemented (see seq2exp_jax/reference.py)")
  if cfg.get("test_soft") and cfg.get("test_hard"):
    raise UnsupportedConfig("caduceus_config: test_soft and test_hard are both set")
  if bool(cfg.get("test_hard")) != bool(cfg.get("post_hard_dist")):
    raise UnsupportedConfig("caduceus_config: test_hard and post_hard_dist must agree "
                            f"(got {cfg.get('test_hard')} and {cfg.get('post_hard_dist')})")
  ssm = _ssm_settings(cfg.get("ssm_cfg", {}), cfg["d_model"])
  if ssm["expand"] != 2 or ssm["d_conv"] != 4 or ssm["dt_rank"] is not None:
    raise UnsupportedConfig("caduceus_config.ssm_cfg: Seq2Exp uses expand=2, d_conv=4, "
                            "dt_rank='auto'")
  kwargs = dict(
      d_model=cfg["d_model"], n_gen_layer=cfg["gen_n_layer"], n_enc_layer=cfg["enc_n_layer"],
      center_len=cfg["center_len"], signal_size=cfg.get("signal_size", 3),
      share_generator=bool(cfg.get("enc_prd_ps", False)),
      gen_signal=bool(cfg.get("gen_signal", False)), pos_enc=bool(cfg.get("pos_enc", False)),
      seq_range=cfg.get("seq_range", 200_000),
      prior_scale_factor=float(cfg["prior_scale_factor"]),
      prior_beta=_floats(cfg.get("prior_beta", "1.5,0.2,1.0")),
      prior_weight=_floats(cfg.get("prior_weight", "2,2,1")),
      beta_min=float(cfg["beta_min"]), z_scale=float(cfg.get("z_scale", 1.0)),
      marginal_mean=float(cfg["marginal_mean"]),
      marginal_scale=float(cfg["marginal_scale"]), hard=bool(cfg.get("test_hard", False)),
      threshold=float(cfg.get("sample_threshold", 0.5)),
      init_n_layer=int(cfg.get("n_layer", 64)), d_state=ssm["d_state"],
      norm_epsilon=float(cfg.get("norm_epsilon", 1e-5)))
  kwargs.update(overrides)
  return Seq2Exp(**kwargs)


def model_from_config(config: Mapping[str, Any], **overrides) -> ReferenceModel:
  """Our module for a golden JSON (its `module` and `kwargs` or `caduceus_config`)."""
  module_name = config.get("module", "")
  if "GeneBiMambaMIRNP" in module_name:
    cfg = config["caduceus_config"]
    return ReferenceModel("seq2exp", seq2exp_from_config(cfg, **overrides),
                          shared_encoder=bool(cfg.get("enc_prd_ps", False)),
                          kl_weight=float(config.get("kl_loss_weight", 0.0)))
  if "GeneExpBiMamba" in module_name:
    cfg = config["caduceus_config"]
    if cfg.get("interact", "concat") != "concat":
      raise UnsupportedConfig(f"caduceus_config.interact={cfg['interact']!r}: only 'concat'")
    ssm = _ssm_settings(cfg.get("ssm_cfg", {}), cfg["d_model"])
    return ReferenceModel("geneexp", GeneExpModel(
        backbone="caduceus", use_signals=True, d_model=cfg["d_model"], n_layer=cfg["n_layer"],
        center_len=cfg["center_len"], d_state=ssm["d_state"],
        norm_epsilon=float(cfg.get("norm_epsilon", 1e-5)), **overrides))
  if "Caduceus" in module_name:
    cfg = config["caduceus_config"]
    ssm = _ssm_settings(cfg.get("ssm_cfg", {}), cfg["d_model"])
    return ReferenceModel("caduceus", Caduceus(
        d_model=cfg["d_model"], n_layer=cfg["n_layer"], d_state=ssm["d_state"],
        d_conv=ssm["d_conv"], expand=ssm["expand"],
        norm_epsilon=float(cfg.get("norm_epsilon", 1e-5)), **overrides))
  if "kwargs" in config:
    kw = config["kwargs"]
    ssm = _ssm_settings(kw, kw["d_model"])
    if kw.get("bidirectional"):
      if kw.get("bidirectional_strategy", "add") != "add" or \
          not kw.get("bidirectional_weight_tie", True):
        raise UnsupportedConfig("BiMambaWrapper: only strategy 'add' with weight_tie=True")
      return ReferenceModel("bimamba", BiMamba(d_model=kw["d_model"], **ssm, **overrides))
    return ReferenceModel("mamba", Mamba(d_model=kw["d_model"], **ssm, **overrides))
  raise UnsupportedConfig(f"no model for module {module_name!r} (expected a Mamba, "
                          "BiMambaWrapper, Caduceus, GeneBiMambaMIRNP or GeneExpBiMamba config)")


@dataclasses.dataclass
class GoldenCase:
  """A golden file split by kind of array."""

  config: dict
  params: dict[str, np.ndarray]
  inputs: dict[str, np.ndarray]
  outputs: dict[str, np.ndarray]
  grads: dict[str, np.ndarray]

  @classmethod
  def load(cls, npz_path, config_path=None) -> "GoldenCase":
    npz_path = pathlib.Path(npz_path)
    config_path = pathlib.Path(config_path) if config_path else npz_path.with_suffix(".json")
    for p in (npz_path, config_path):
      if not p.exists():
        raise FileNotFoundError(f"{p}: no such file")
    config = json.loads(config_path.read_text())
    groups: dict[str, dict[str, np.ndarray]] = {"param": {}, "input": {}, "output": {},
                                                "grad": {}, "inter": {}}
    with np.load(npz_path) as data:
      for key in data.files:
        group, _, name = key.partition("/")
        if group not in groups:
          raise ValueError(f"{npz_path}: key {key!r} is not param/, input/, output/, grad/ "
                           "or inter/")
        groups[group][name] = data[key]
    return cls(config, groups["param"], groups["input"], groups["output"], groups["grad"])


def flax_params(model: ReferenceModel, state_dict: Mapping[str, np.ndarray],
                source: str = "checkpoint") -> dict:
  """Our params from a state_dict, checked against the model's own param structure."""
  params = convert.torch_to_flax(state_dict, shared_encoder=model.shared_encoder)
  if model.kind == "seq2exp":
    _check_constants(model.module, state_dict, source)
  expected = jax.eval_shape(lambda: init_params(model, example_inputs(model, 2, 2000)))
  convert.check_same_structure(params, expected, source)
  return params


def _check_constants(module: Seq2Exp, state_dict, source: str):
  """The original stores its fixed prior constants as frozen Parameters; ours are config."""
  want = {"prior_weights": np.log(np.asarray(module.prior_weight) / sum(module.prior_weight)),
          "signal_betas": np.asarray(module.prior_beta)}
  for key, expected in want.items():
    if key in state_dict and not np.allclose(state_dict[key], expected, rtol=1e-6, atol=1e-6):
      raise convert.ConversionError(
          f"{source}: {key}={np.asarray(state_dict[key]).tolist()} differs from the config's "
          f"{expected.tolist()}")


def example_inputs(model: ReferenceModel, batch: int, length: int) -> dict[str, jax.Array]:
  """Zero inputs of the right shapes, for shape inference and init."""
  m = model.module
  if model.kind in ("mamba", "bimamba", "caduceus"):
    return {"x": jnp.zeros((batch, length, m.d_model), jnp.float32)}
  if model.kind == "seq2exp":
    length = m.seq_range if m.pos_enc else max(length, m.center_len)
  else:
    length = max(length, m.center_len)
  return {"seqs": jnp.zeros((batch, length, 4)), "signals": jnp.zeros((batch, length, 3)),
          "rna_feat": jnp.zeros((batch, 9)),
          "mask_regions": jnp.zeros((batch, length, 2), bool)}


def init_params(model: ReferenceModel, inputs: Mapping[str, jax.Array], seed: int = 0):
  return model.module.init(jax.random.PRNGKey(seed), *_call_args(model, inputs))["params"]


def _call_args(model: ReferenceModel, inputs: Mapping[str, Any]) -> tuple:
  if model.kind in ("mamba", "bimamba", "caduceus"):
    (x,) = [v for k, v in inputs.items() if k != "cotangent"]
    return (x,)
  if model.kind == "seq2exp":
    blacklist = inputs["mask_regions"][..., 1] if "mask_regions" in inputs else None
    return inputs["seqs"], inputs["signals"], blacklist, inputs["rna_feat"]
  return inputs["seqs"], inputs["signals"], inputs["rna_feat"]


def exact_capacity(model: ReferenceModel, params, inputs: Mapping[str, Any]) -> int:
  """The packed Seq2Exp's capacity for parity with the original: the batch's largest count
  of selected positions (the original pads to it). Needs concrete values: call outside jit."""
  first = jax.jit(model.module.apply)({"params": params}, *_call_args(model, inputs))
  return int(jnp.max(jnp.sum(first.mask == 1.0, axis=1)))


def forward(model: ReferenceModel, params, inputs: Mapping[str, Any],
            capacity: int | None = None) -> dict[str, jax.Array]:
  """Every reference output, by its golden name, and `loss` as the golden's loss.

  For the packed (pos_enc) Seq2Exp the capacity defaults to `exact_capacity`, which needs one
  extra pass and concrete inputs; under jit, pass `capacity` explicitly.
  """
  inputs = {k: jnp.asarray(v) for k, v in inputs.items()}
  if model.kind == "seq2exp" and model.module.pos_enc and capacity is None:
    capacity = exact_capacity(model, params, inputs)
  args = _call_args(model, inputs)
  variables = {"params": params}
  if model.kind in ("mamba", "bimamba", "caduceus"):
    out = model.module.apply(variables, *args)
    return {"out": out, "loss": jnp.sum(out * inputs["cotangent"])}
  if model.kind == "geneexp":
    pred = model.module.apply(variables, *args)
    return {"prediction": pred, "pred_loss": smooth_l1(pred, inputs["target"])}
  o = model.module.apply(variables, *args, capacity=capacity)
  shape = o.mask.shape
  outputs = {"prediction": o.prediction, "mask": o.mask, "post_alpha": o.post_alpha,
             "post_beta": o.post_beta, "z_alpha": o.z_alpha, "z_beta": o.z_beta,
             "z_mean": o.z_alpha / (o.z_alpha + o.z_beta), "kl_loss": o.kl,
             "continuity_loss": o.continuity}
  for i in range(o.prior_alpha.shape[-1]):
    outputs[f"prior{i}_alpha"] = o.prior_alpha[..., i]
    outputs[f"prior{i}_beta"] = jnp.broadcast_to(o.prior_beta[i], shape)
  outputs["pred_loss"] = smooth_l1(o.prediction, inputs["target"])
  outputs["total_loss"] = outputs["pred_loss"] + model.kl_weight * o.kl
  return outputs


def loss_fn(model: ReferenceModel, inputs: Mapping[str, Any],
            capacity: int | None = None) -> Callable:
  """(params, differentiable inputs) -> the golden's scalar loss (jittable; for the packed
  Seq2Exp pass `capacity`, e.g. `exact_capacity(...)`, since jit has no concrete mask)."""
  key = {"seq2exp": "total_loss", "geneexp": "pred_loss"}.get(model.kind, "loss")

  def f(params, diff_inputs):
    return forward(model, params, {**inputs, **diff_inputs}, capacity)[key]

  return f


MASK_OUTPUTS = {"mask"}


def compare(name: str, got, want, rtol: float = 1e-4, atol: float = 1e-5) -> dict:
  """Errors of one output; masks must be exact where the reference is 0 or 1."""
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  if got.shape != want.shape:
    return {"name": name, "ok": False, "why": f"shape {got.shape}, expected {want.shape}"}
  err = np.abs(got - want)
  rel = err / np.maximum(np.abs(want), np.finfo(np.float32).tiny)
  ok = bool(np.all(err <= atol + rtol * np.abs(want)))
  if name in MASK_OUTPUTS:
    exact = (want == 0) | (want == 1)
    ok = ok and bool(np.all(got[exact] == want[exact]))
  return {"name": name, "ok": ok, "max_abs": float(err.max(initial=0.0)),
          "max_rel": float(rel.max(initial=0.0)), "why": "" if ok else "outside tolerance"}


def grad_paths(model: ReferenceModel, grads: Mapping[str, np.ndarray]):
  """(torch key, our param path, reference array) for every parameter gradient."""
  for key, value in grads.items():
    if key.startswith("input/"):
      continue
    path = convert.flax_path(key, shared_encoder=model.shared_encoder)
    if path is not None:
      yield key, path, value


def load_config(path) -> dict:
  return json.loads(pathlib.Path(path).read_text())
