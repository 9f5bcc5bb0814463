"""The port reproduces the original PyTorch Seq2Exp weight for weight (golden vectors).

Every golden file in tests/data goes through the weight import, the forward pass (every
`output/*`, and every `inter/*` value inside the forward that the port also forms, within
rtol 1e-4 / atol 1e-5, masks exact where the reference is 0 or 1) and the backward pass
(per tensor max|dg| <= 1e-3 max|g_ref| + 1e-8, inputs' gradients included).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import original_counts
from seq2exp_jax.torch_port import convert
from seq2exp_jax.torch_port import reference as ref

CASES = ["a_mamba", "b_bimamba", "c_caduceus", "d_seq2exp_soft", "f_geneexp_bimamba"]


@pytest.fixture(scope="module", params=CASES)
def golden(request, data_dir):
  case = ref.GoldenCase.load(data_dir / f"{request.param}.npz")
  model = ref.model_from_config(case.config)
  params = ref.flax_params(model, case.params, request.param)
  return request.param, case, model, params


def test_forward_matches_reference(golden):
  name, case, model, params = golden
  outputs = jax.jit(lambda p, i: ref.forward(model, p, i))(params, case.inputs)
  assert case.outputs, name
  for key, want in case.outputs.items():
    result = ref.compare(key, outputs[key], want)
    assert result["ok"], (name, result)
  compared = [k for k in case.expected() if k.startswith("inter/") and k in outputs]
  assert compared, name  # every golden has intermediates the port forms too
  for key in compared:
    result = ref.compare(key, outputs[key], case.intermediates[key[len("inter/"):]])
    assert result["ok"], (name, result)


@pytest.mark.parametrize("name,count", [
    ("d_seq2exp_soft", lambda c: original_counts.seq2exp(c["d_model"], c["gen_n_layer"],
                                                         c["enc_n_layer"])),
    ("f_geneexp_bimamba", lambda c: original_counts.geneexp(c["d_model"], c["n_layer"]))])
def test_parameter_count_formula_matches_the_golden_files(data_dir, name, count):
  """The formula the paper-size configs are checked against counts the original's own
  trainable parameters (each weight-tied tensor once, the frozen prior constants not)."""
  case = ref.GoldenCase.load(data_dir / f"{name}.npz")
  trainable = {k: v for k, v in case.params.items()
               if k not in convert.NON_TRAINABLE
               and not (".mamba_rev." in k and (".in_proj." in k or ".out_proj." in k))}
  assert sum(math.prod(v.shape) for v in trainable.values()) == count(
      case.config["caduceus_config"])
  model = ref.model_from_config(case.config)
  ours = jax.eval_shape(lambda: ref.init_params(model, ref.example_inputs(model, 1, 2000)))
  assert sum(math.prod(x.shape) for x in jax.tree.leaves(ours)) == count(
      case.config["caduceus_config"])


def test_backward_matches_reference(golden):
  name, case, model, params = golden
  diff_inputs = {k: case.inputs[k] for k in ("hidden_states", "inputs_embeds")
                 if k in case.inputs}
  fixed = {k: v for k, v in case.inputs.items() if k not in diff_inputs}
  grad_fn = jax.jit(jax.grad(ref.loss_fn(model, fixed), argnums=(0, 1)))
  g_params, g_inputs = grad_fn(params, diff_inputs)
  g_params = convert.unstack_layers(g_params)
  checked = 0
  for key, path, want in ref.grad_paths(model, case.grads):
    got = g_params
    for p in path:
      got = got[p]
    got = convert.from_flax_value(key, np.asarray(got), want.shape)
    tol = 1e-3 * np.max(np.abs(want)) + 1e-8
    assert got.shape == want.shape, key
    assert np.max(np.abs(got - want)) <= tol, (name, key, np.max(np.abs(got - want)), tol)
    checked += 1
  assert checked == len([k for k in case.grads if not k.startswith("input/")])
  for key, want in case.grads.items():
    if key.startswith("input/"):
      got = np.asarray(g_inputs[key.split("/", 1)[1]])
      assert np.max(np.abs(got - want)) <= 1e-3 * np.max(np.abs(want)) + 1e-8, key


def test_every_param_gets_a_reference_gradient(golden):
  """No param of ours is left untested: each one has a golden gradient (frozen ones aside)."""
  name, case, model, params = golden
  covered = {path for _, path, _ in ref.grad_paths(model, case.grads)}
  ours = {tuple(k.key for k in path) for path, _ in
          jax.tree_util.tree_leaves_with_path(convert.unstack_layers(params))}
  assert ours == covered, (name, ours ^ covered)


def test_corrupted_weights_change_the_output(golden):
  """The comparison is sensitive: scaling the imported weights by 1% breaks the match."""
  name, case, model, params = golden
  nudged = jax.tree_util.tree_map(lambda x: x * 1.01, params)
  outputs = ref.forward(model, nudged, case.inputs)
  results = [ref.compare(k, outputs[k], v) for k, v in case.outputs.items()]
  assert not all(r["ok"] for r in results), name


def test_tied_weights_must_agree(data_dir):
  case = ref.GoldenCase.load(data_dir / "b_bimamba.npz")
  state = dict(case.params)
  state["mamba_rev.in_proj.weight"] = state["mamba_rev.in_proj.weight"] + 1.0
  with pytest.raises(convert.ConversionError, match="tied"):
    convert.torch_to_flax(state)


def test_missing_weight_is_named(data_dir):
  case = ref.GoldenCase.load(data_dir / "c_caduceus.npz")
  model = ref.model_from_config(case.config)
  state = {k: v for k, v in case.params.items() if "norm_f" not in k}
  with pytest.raises(convert.ConversionError, match="missing norm_f/scale"):
    ref.flax_params(model, state, "c.npz")


def test_unsupported_option_is_refused(data_dir):
  case = ref.GoldenCase.load(data_dir / "d_seq2exp_soft.npz")
  config = dict(case.config)
  config["caduceus_config"] = dict(config["caduceus_config"], use_gumbel=True)
  with pytest.raises(ref.UnsupportedConfig, match="use_gumbel"):
    ref.model_from_config(config)


def test_marginal_prior_matches_original_float32():
  from seq2exp_jax.model.bottleneck import marginal_concentrations
  assert marginal_concentrations(0.1, 10.0) == (10.0, pytest.approx(90.0, rel=1e-6))
  a, b = marginal_concentrations(0.45, 0.1)
  assert a == pytest.approx(0.1, rel=1e-6) and b == np.float32(0.12222224)
  assert jnp.float32(b) == jnp.float32(0.12222224)
