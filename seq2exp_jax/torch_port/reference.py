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
import zipfile

from data_pipeline.errors import DataFormatError, MissingInputError
from data_pipeline.batch import DNA_CHANNELS, NUM_RNA_FEATURES, NUM_SIGNALS
from seq2exp_jax.model.caduceus import Caduceus
from seq2exp_jax.model.losses import smooth_l1
from seq2exp_jax.model.mamba import BiMamba, Mamba
from seq2exp_jax.model.seq2exp import Seq2Exp
from seq2exp_jax.torch_port import convert, options
from seq2exp_jax.torch_port.options import UnsupportedConfig  # noqa: F401  (re-exported)


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


def model_from_config(config: Mapping[str, Any]) -> ReferenceModel:
  """Our module for a golden JSON (its `module` and `kwargs` or `caduceus_config`)."""
  module_name = config.get("module", "")
  if "GeneBiMambaMIRNP" in module_name:
    cfg = config["caduceus_config"]
    kl_weight = float(config.get("kl_loss_weight", 0.0)) if cfg.get("aux_loss_kl", True) else 0.0
    return ReferenceModel("seq2exp", options.seq2exp_from_config(cfg),
                          shared_encoder=bool(cfg.get("enc_prd_ps", False)),
                          kl_weight=kl_weight)
  if "GeneExpBiMamba" in module_name:
    return ReferenceModel("geneexp", options.geneexp_from_config(config["caduceus_config"]))
  if "Caduceus" in module_name:
    cfg = config["caduceus_config"]
    backbone = options.ssm_config(cfg.get("ssm_cfg", {}), cfg["d_model"],
                           norm_epsilon=float(cfg.get("norm_epsilon", 1e-5)))
    return ReferenceModel("caduceus", Caduceus(backbone, cfg["n_layer"]))
  if "kwargs" in config:
    kw = config["kwargs"]
    if kw.get("bidirectional"):
      if kw.get("bidirectional_strategy", "add") != "add" or \
          not kw.get("bidirectional_weight_tie", True):
        raise UnsupportedConfig("BiMambaWrapper: only strategy 'add' with weight_tie=True")
      return ReferenceModel("bimamba", BiMamba(options.ssm_config(kw, kw["d_model"])))
    return ReferenceModel("mamba", Mamba(options.ssm_config(kw, kw["d_model"],
                                                     bidirectional=False)))
  raise UnsupportedConfig(f"no model for module {module_name!r} (expected a Mamba, "
                          "BiMambaWrapper, Caduceus, GeneBiMambaMIRNP or GeneExpBiMamba config)")


@dataclasses.dataclass
class GoldenCase:
  """A golden file split by kind of array: `intermediates` are the original's values inside
  the forward pass (Seq2Exp: mask_logits, generator_out, p_embed), compared like outputs."""

  config: dict
  params: dict[str, np.ndarray]
  inputs: dict[str, np.ndarray]
  outputs: dict[str, np.ndarray]
  grads: dict[str, np.ndarray]
  intermediates: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

  @classmethod
  def load(cls, npz_path, config_path=None) -> "GoldenCase":
    npz_path = pathlib.Path(npz_path)
    config_path = pathlib.Path(config_path) if config_path else npz_path.with_suffix(".json")
    if not npz_path.is_file():
      raise MissingInputError(f"{npz_path}: no such file")
    groups: dict[str, dict[str, np.ndarray]] = {"param": {}, "input": {}, "output": {},
                                                "grad": {}, "inter": {}}
    try:
      with np.load(npz_path, allow_pickle=False) as data:
        for key in data.files:
          group, _, name = key.partition("/")
          if group not in groups:
            raise DataFormatError(f"{npz_path}: key {key!r} is not param/, input/, output/, "
                                  "grad/ or inter/")
          groups[group][name] = data[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
      if isinstance(e, DataFormatError):
        raise
      raise DataFormatError(f"{npz_path}: not a readable .npz archive of param/, input/ and "
                            f"output/ arrays ({type(e).__name__}: {e})") from e
    if not groups["input"]:
      raise DataFormatError(f"{npz_path}: no input/<name> arrays: a golden file holds the "
                            "inputs the outputs were computed from")
    if not config_path.is_file():
      raise MissingInputError(f"{config_path}: no such file (the model config JSON of "
                              f"{npz_path.name}; pass --config)")
    try:
      config = json.loads(config_path.read_text())
    except json.JSONDecodeError as e:
      raise DataFormatError(f"{config_path}: not valid JSON ({e})") from e
    return cls(config, groups["param"], groups["input"], groups["output"], groups["grad"],
               groups["inter"])

  def expected(self) -> dict[str, np.ndarray]:
    """Every array `forward` must reproduce: outputs by name, intermediates as inter/<name>."""
    return {**self.outputs, **{f"inter/{k}": v for k, v in self.intermediates.items()}}


def flax_params(model: ReferenceModel, state_dict: Mapping[str, np.ndarray],
                source: str = "checkpoint") -> dict:
  """Our params from a state_dict, checked against the model's own param structure."""
  params = convert.torch_to_flax(state_dict, shared_encoder=model.shared_encoder)
  if model.kind == "seq2exp" and model.module.bottleneck.dist_param_grad:
    params["bottleneck"] = _learned_constants(model.module, state_dict)
  elif model.kind == "seq2exp":
    _check_constants(model.module, state_dict, source)
  expected = jax.eval_shape(lambda: init_params(model, example_inputs(model, 2, 2000)))
  convert.check_same_structure(params, expected, source)
  return params


def _original_weights(model: Seq2Exp) -> np.ndarray:
  """The original's prior_weight list: the tracks', then the include list's if a prior."""
  mask = model.bottleneck
  extra = (mask.include_weight,) if model.include_list == "prior" else ()
  return np.asarray(mask.prior_weight + extra, np.float64)


def _learned_constants(model: Seq2Exp, state_dict) -> dict[str, np.ndarray]:
  """dist_param_grad: the original's learned `prior_weights` (tracks, then the include list)
  and `signal_betas` as our bottleneck's params."""
  n = len(model.bottleneck.prior_weight)
  log_w = np.asarray(state_dict["prior_weights"], np.float32)
  out = {"prior_weights": log_w[:n],
         "signal_betas": np.asarray(state_dict["signal_betas"], np.float32)}
  if model.include_list == "prior":
    out["include_weight"] = log_w[n]
  return out


def _check_constants(model: Seq2Exp, state_dict, source: str):
  """The original stores its fixed prior constants as frozen Parameters; ours are config."""
  weights = _original_weights(model)
  want = {"prior_weights": np.log(weights / weights.sum()),
          "signal_betas": np.asarray(model.bottleneck.prior_beta)}
  for key, expected in want.items():
    if key in state_dict and not np.allclose(state_dict[key], expected, rtol=1e-6, atol=1e-6):
      raise convert.ConversionError(
          f"{source}: {key}={np.asarray(state_dict[key]).tolist()} differs from the config's "
          f"{expected.tolist()}")


BARE = ("mamba", "bimamba", "caduceus")  # modules on (B, L, D) hidden states


def example_inputs(model: ReferenceModel, batch: int, length: int) -> dict[str, jax.Array]:
  """Zero inputs of the right shapes (the original's names), for shape inference and init."""
  m = model.module
  if model.kind in BARE:
    return {"x": jnp.zeros((batch, length, m.config.d_model), jnp.float32)}
  length = max(length, m.center_len)
  if model.kind == "seq2exp" and m.pos_enc:
    length = m.seq_range or length
  return {"seqs": jnp.zeros((batch, length, DNA_CHANNELS)),
          "signals": jnp.zeros((batch, length, NUM_SIGNALS)),
          "rna_feat": jnp.zeros((batch, NUM_RNA_FEATURES)),
          "mask_regions": jnp.zeros((batch, length, 2), bool)}


def init_params(model: ReferenceModel, inputs: Mapping[str, jax.Array], seed: int = 0):
  args, kwargs = _call_args(model, inputs)
  return model.module.init(jax.random.PRNGKey(seed), *args, **kwargs)["params"]


def _call_args(model: ReferenceModel, inputs: Mapping[str, Any]) -> tuple[tuple, dict]:
  """Our call's (args, kwargs) from the original's input names."""
  if model.kind in BARE:
    (x,) = [v for k, v in inputs.items() if k != "cotangent"]
    return (x,), {}
  # mask_regions[..., 0] is the include list, [..., 1] the blacklist; peak_mask the peaks.
  regions = inputs.get("mask_regions")
  kwargs = {"blacklist": None if regions is None else regions[..., 1]}
  extra = model.module.extra_inputs
  if "includelist" in extra:
    kwargs["includelist"] = regions[..., 0]
  if "peaks" in extra:
    kwargs["peaks"] = inputs["peak_mask"] > 0.5
  return (inputs["seqs"], inputs["signals"], inputs["rna_feat"]), kwargs


def exact_capacity(model: ReferenceModel, params, inputs: Mapping[str, Any]) -> int:
  """The packed Seq2Exp's capacity for parity with the original: the batch's largest count
  of selected positions (the original pads to it). Needs concrete values: call outside jit."""
  args, kwargs = _call_args(model, inputs)
  first = jax.jit(lambda p, a, k: model.module.apply({"params": p}, *a, **k))(params, args,
                                                                            kwargs)
  return int(jnp.max(jnp.sum(first.mask == 1.0, axis=1)))


def _sown(tree: Mapping[str, Any], name: str):
  """The first value sown as `name` anywhere in an intermediates tree."""
  for key, value in tree.items():
    if key == name:
      return value[0]
    if isinstance(value, Mapping):
      found = _sown(value, name)
      if found is not None:
        return found
  return None


def _golden_intermediates(kind: str, state: Mapping[str, Any]) -> dict[str, jax.Array]:
  """Our sown values under the golden's `inter/` names and layouts (the original flattens
  (B, L) to B * L rows for x_after_conv_silu and x_dbl)."""
  def ssm(tree, prefix=""):
    out = {f"inter/{prefix}y_scan_gated": tree["y_scan_gated"][0]}
    for name in ("x_after_conv_silu", "x_dbl"):
      value = tree[name][0]
      out[f"inter/{prefix}{name}"] = value.reshape(-1, value.shape[-1])
    return out

  if kind == "mamba":
    return ssm(state["ssm"])
  if kind == "bimamba":
    return {**ssm(state["mamba_fwd"], "fwd/"), **ssm(state["mamba_rev"], "rev/")}
  if kind == "caduceus":
    layers = state["layers"]
    return {f"inter/layer{i}/{name}": layers[name][0][i]
            for name in ("hidden_states_out", "residual_out")
            for i in range(layers[name][0].shape[0])}
  return {f"inter/{name}": _sown(state, name) for name in
          ("mask_logits", "generator_out", "p_embed") if _sown(state, name) is not None}


def forward(model: ReferenceModel, params, inputs: Mapping[str, Any],
            capacity: int | None = None) -> dict[str, jax.Array]:
  """Every reference output by its golden name (Seq2Exp's intermediates as inter/<name>),
  and the golden's loss.

  For the packed Seq2Exp the capacity defaults to `exact_capacity`, which needs one extra
  pass and concrete inputs; under jit, pass `capacity` explicitly.
  """
  inputs = {k: jnp.asarray(v) for k, v in inputs.items()}
  if model.kind == "seq2exp" and model.module.pack_selected and capacity is None:
    capacity = exact_capacity(model, params, inputs)
  args, kwargs = _call_args(model, inputs)
  variables = {"params": params}
  if model.kind in BARE:
    out, state = model.module.apply(variables, *args, mutable=["intermediates"])
    return {"out": out, "loss": jnp.sum(out * inputs["cotangent"]),
            **_golden_intermediates(model.kind, state["intermediates"])}
  if model.kind == "geneexp":
    o, state = model.module.apply(variables, *args, **kwargs, mutable=["intermediates"])
    pred = o.prediction[:, None]
    return {"prediction": pred, "pred_loss": smooth_l1(pred, inputs["target"]),
            **_golden_intermediates(model.kind, state["intermediates"])}
  o, state = model.module.apply(variables, *args, **kwargs, capacity=capacity,
                                mutable=["intermediates"])
  d = o.distribution
  shape = o.mask.shape
  outputs = {"prediction": o.prediction[:, None], "mask": o.mask,
             "post_alpha": d.post_alpha, "post_beta": d.post_beta, "z_alpha": d.z_alpha,
             "z_beta": d.z_beta, "z_mean": d.z_alpha / (d.z_alpha + d.z_beta),
             "kl_loss": o.kl, "continuity_loss": o.continuity}
  for i in range(d.prior_alpha.shape[-1]):
    outputs[f"prior{i}_alpha"] = d.prior_alpha[..., i]
    outputs[f"prior{i}_beta"] = jnp.broadcast_to(d.prior_beta[i], shape)
  outputs["pred_loss"] = smooth_l1(outputs["prediction"], inputs["target"])
  outputs["total_loss"] = outputs["pred_loss"] + model.kl_weight * o.kl
  return {**outputs, **_golden_intermediates(model.kind, state["intermediates"])}


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
