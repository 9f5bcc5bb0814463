"""Prism: the signal encoder against the original PyTorch code (tests/data/g_prism_signal.npz,
tests/data/make_prism_golden.py), the backdoor adjustment against the sum over contexts
computed directly, the invariances the original has, and the paper-size model's shapes and
parameter count against the original's, counted from its code."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import original_counts
from conftest import REPO
from data_pipeline.batch import Batch, crop
from seq2exp_jax.config import loader as configs
from seq2exp_jax.model.losses import smooth_l1
from seq2exp_jax.model.prism import Prism
from seq2exp_jax.model.prism_signal import SignalWeightGenerator, uniform_loss
from seq2exp_jax.model.ssm_config import SSMConfig
from seq2exp_jax.train.task import build_model

KEY = jax.random.PRNGKey(0)
N_CONTEXT = 3


def original_signal_encoder(signals: int, cnn: int, d: int, n: int) -> int:
  """SignalWeightGenerator's parameters, GeneExpformer.py lines 25-47: Conv1d(S, c, 7),
  BatchNorm1d(c), Conv1d(c, 2c, 5), BatchNorm1d(2c), Conv1d(2c, 4c, 3), BatchNorm1d(4c),
  Linear(4c, D n); every conv and Linear with a bias, BatchNorm weight + bias (the running
  statistics are buffers)."""
  convs = sum(c_in * c_out * k + c_out + 2 * c_out for c_in, c_out, k in
              ((signals, cnn, 7), (cnn, 2 * cnn, 5), (2 * cnn, 4 * cnn, 3)))
  return convs + 4 * cnn * d * n + d * n


def original_prism(d: int, n_layer: int, n_context: int, cnn: int) -> int:
  """Prism's parameters, GeneExpformer.py lines 71-98: Caduceus without its embedding
  (`ignore_embed_layer`, line 74: the blocks and norm_f), seq_input_layer Linear(4, D),
  signal_input_layer Linear(S, D), the signal encoder (intervention_loss_weight != 0) and
  pToExpr."""
  s = original_counts.SIGNALS
  return (n_layer * original_counts.bimamba_layer(d) + d + (4 * d + d) + (s * d + d)
          + original_signal_encoder(s, cnn, d, n_context) + original_counts.head(d))


def _inputs(batch=2, length=256, seed=1):
  k = jax.random.split(jax.random.PRNGKey(seed), 3)
  dna = jax.nn.one_hot(jax.random.randint(k[0], (batch, length), 0, 5), 4)  # 4 -> N row
  sig = jax.random.gamma(k[1], 0.5, (batch, length, 3)) * jnp.array([20.0, 50.0, 1.0])
  rna = jax.random.normal(k[2], (batch, 9))
  return dna, sig, rna


def _model(**kw):
  fields = dict(n_layer=1, center_len=128, n_context=N_CONTEXT, cnn_dim=4)
  return Prism(SSMConfig(d_model=16, d_state=4), **{**fields, **kw})


class Compiled:
  """One small Prism, its params and its forward passes, each compiled once for the module
  (the tests share the shapes (2, 256))."""

  def __init__(self):
    self.model = model = _model()
    self.params = jax.jit(model.init)(KEY, *_inputs())["params"]
    self.train = jax.jit(lambda p, *x: model.apply({"params": p}, *x, train=True))
    self.evaluate = jax.jit(lambda p, *x: model.apply({"params": p}, *x))


@pytest.fixture(scope="module")
def prism():
  return Compiled()


def _golden_params(z) -> dict:
  """The original's parameters as our param tree (conv (O, I, K) -> (K, I, O))."""
  p = lambda name: np.asarray(z[f"param/{name}"])  # noqa: E731
  tree = {"weight_projector": {"kernel": p("weight_projector.0.weight").T,
                               "bias": p("weight_projector.0.bias")}}
  for i, (conv, norm) in enumerate(((0, 1), (4, 5), (8, 9))):  # nn.Sequential indices
    tree[f"conv_{i}"] = {"kernel": p(f"cnn_encoder.{conv}.weight").transpose(2, 1, 0),
                         "bias": p(f"cnn_encoder.{conv}.bias")}
    tree[f"norm_{i}"] = {"scale": p(f"cnn_encoder.{norm}.weight"),
                         "bias": p(f"cnn_encoder.{norm}.bias")}
  return tree


def test_signal_encoder_and_uniform_loss_match_the_original(data_dir):
  z = np.load(data_dir / "g_prism_signal.npz")
  d, n, cnn = (int(v) for v in z["shape"])
  gen = SignalWeightGenerator(d, n, cnn)
  params = _golden_params(z)
  ours = jax.eval_shape(gen.init, KEY, jnp.asarray(z["signals"]))["params"]
  assert jax.tree.map(lambda x: x.shape, ours) == jax.tree.map(np.shape, params)
  weights = gen.apply({"params": params}, jnp.asarray(z["signals"]))
  np.testing.assert_allclose(weights, z["weights"], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(uniform_loss(weights, float(z["t"])), z["uniform_loss"],
                             rtol=1e-6)
  count = sum(math.prod(x.shape) for x in jax.tree.leaves(ours))
  assert count == int(z["n_params"]) == original_signal_encoder(3, cnn, d, n)


def test_uniform_loss_is_the_sum_over_pairs():
  w = np.asarray(jax.random.uniform(KEY, (2, 16, N_CONTEXT)))
  t, expected = 2.0, []
  for b in range(2):
    a = [w[b, :, k] / (np.linalg.norm(w[b, :, k]) + 1e-8) for k in range(N_CONTEXT)]
    expected.append(np.log(sum(np.exp(2 * t * a[i] @ a[j] - 2 * t)
                               for i in range(N_CONTEXT) for j in range(N_CONTEXT))))
  np.testing.assert_allclose(uniform_loss(jnp.asarray(w), t), np.mean(expected), rtol=1e-6)
  same = jnp.ones((1, 16, N_CONTEXT))  # identical contexts: every pair counts 1
  np.testing.assert_allclose(uniform_loss(same, t), math.log(N_CONTEXT ** 2), rtol=1e-6)


def test_intervention_is_the_mean_over_contexts_computed_one_by_one(prism):
  """Each context run through the backbone on its own, its hidden states averaged, then
  the head: a reshape that mixed genes and contexts in the shared batch would differ."""
  dna, sig, rna = _inputs()
  out = prism.train(prism.params, dna, sig, rna)

  def direct(m):
    e_seq, e_sig = m.embed(dna, sig)
    w = m.weight_generator(sig)
    hidden = [m.caduceus(e_seq + e_sig * w[:, None, :, k]) for k in range(N_CONTEXT)]
    return (m.predict(m.caduceus(e_seq + e_sig), rna),
            m.predict(sum(hidden) / N_CONTEXT, rna), w)

  plain, adjusted, w = jax.jit(lambda p: prism.model.apply({"params": p}, method=direct))(
      prism.params)
  np.testing.assert_allclose(out.prediction, plain, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out.intervention, adjusted, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out.weights, w, rtol=1e-6)
  assert not np.allclose(out.intervention, out.prediction, atol=1e-4)
  assert out.weights.shape == (2, 16, N_CONTEXT) and np.all((w > 0) & (w < 1))


def _permute_contexts(params, perm):
  """The projector's outputs reordered so that context k becomes context perm[k] (the flat
  index is d * n + k, torch's .view(bs, d_model, n_context))."""
  proj = params["weight_generator"]["weight_projector"]
  kernel = proj["kernel"].reshape(proj["kernel"].shape[0], -1, N_CONTEXT)[..., perm]
  bias = proj["bias"].reshape(-1, N_CONTEXT)[..., perm]
  new = jax.tree.map(lambda x: x, params)
  new["weight_generator"]["weight_projector"] = {"kernel": kernel.reshape(proj["kernel"].shape),
                                                 "bias": bias.reshape(-1)}
  return new


def test_permuting_the_contexts_changes_nothing(prism):
  dna, sig, rna = _inputs()
  out = prism.train(prism.params, dna, sig, rna)
  perm = np.array([2, 0, 1])
  moved = prism.train(_permute_contexts(prism.params, perm), dna, sig, rna)
  np.testing.assert_allclose(moved.weights, out.weights[..., perm], rtol=1e-6)
  np.testing.assert_allclose(moved.intervention, out.intervention, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(moved.uniform, out.uniform, rtol=1e-6)
  np.testing.assert_allclose(moved.prediction, out.prediction, rtol=1e-6)


def test_the_prediction_reads_context_zero_only(prism):
  """Training and evaluation predict alike, and the signal encoder (any weights) moves the
  intervention but never the prediction; evaluation runs no context."""
  dna, sig, rna = _inputs()
  train = prism.train(prism.params, dna, sig, rna)
  evaluate = prism.evaluate(prism.params, dna, sig, rna)
  np.testing.assert_allclose(train.prediction, evaluate.prediction, rtol=1e-5, atol=1e-6)
  assert evaluate.intervention is None and evaluate.extra_loss(jnp.zeros(2)) == {}
  other = jax.tree.map(lambda x: x, prism.params)
  other["weight_generator"] = jax.tree.map(lambda x: x + 0.5, other["weight_generator"])
  moved = prism.train(other, dna, sig, rna)
  np.testing.assert_allclose(moved.prediction, train.prediction, rtol=1e-6)
  assert not np.allclose(moved.intervention, train.intervention, atol=1e-4)


def test_evaluation_of_a_gene_does_not_depend_on_its_batch(prism):
  """(The signal encoder's BatchNorm normalises by the batch: it must not reach it.)"""
  dna, sig, rna = _inputs()
  together = prism.evaluate(prism.params, dna, sig, rna).prediction
  other = prism.evaluate(prism.params, dna.at[1].set(dna[0][::-1]), sig.at[1].mul(3.0),
                         rna).prediction
  np.testing.assert_allclose(other[0], together[0], rtol=1e-6)
  assert not np.isclose(other[1], together[1])


def test_extra_loss_and_its_gradient(prism):
  """extra_loss = w_i smooth_l1(intervention, y) + w_u uniform, and the signal encoder
  learns from it (the prediction never reads the encoder: test above)."""
  dna, sig, rna = _inputs()
  target = jnp.array([0.5, -1.0])
  out = prism.train(prism.params, dna, sig, rna).replace(intervention_weight=0.5,
                                                          uniform_weight=2.0)
  terms = out.extra_loss(target)
  np.testing.assert_allclose(terms["intervention"],
                             0.5 * smooth_l1(out.intervention, target), rtol=1e-6)
  np.testing.assert_allclose(terms["uniform"], 2.0 * out.uniform, rtol=1e-6)
  extra = lambda p: sum(prism.model.apply(  # noqa: E731
      {"params": p}, dna, sig, rna, train=True).extra_loss(target).values())
  grads = jax.jit(jax.grad(extra))(prism.params)["weight_generator"]
  assert all(float(jnp.sum(g ** 2)) > 0 for g in jax.tree.leaves(grads))


def test_without_the_intervention_loss_prism_is_caduceus_on_both_embeddings():
  model = _model(intervention_loss_weight=0.0)
  params, out = jax.eval_shape(lambda k, *x: (
      p := model.init(k, *x)["params"], model.apply({"params": p}, *x, train=True)),
      KEY, *_inputs())
  assert set(params) == {"seq_input_layer", "signal_input_layer", "caduceus", "pToExpr"}
  assert out.intervention is None and out.extra_loss(jnp.zeros(2)) == {}


def test_signals_outside_the_window_change_nothing(prism):
  """The loader's crop (data.window) is Prism's window: a signal change outside it changes
  nothing, one inside it changes the prediction and the intervention."""
  dna, sig, rna = (np.asarray(x) for x in _inputs(length=1024))

  def run(signals):  # crop works on one example, positions first
    rows = [crop({"dna": d, "signals": s}, 256) for d, s in zip(dna, signals)]
    o = prism.train(prism.params, jnp.asarray(np.stack([r["dna"] for r in rows])),
                    jnp.asarray(np.stack([r["signals"] for r in rows])), jnp.asarray(rna))
    return np.asarray(o.prediction), np.asarray(o.intervention)

  base = run(sig)
  outside = sig.copy()
  outside[:, :384] += 100.0
  outside[:, -384:] += 100.0
  for a, b in zip(run(outside), base):
    np.testing.assert_array_equal(a, b)
  inside = sig.copy()
  inside[:, 500:520] += 100.0
  for a, b in zip(run(inside), base):
    assert not np.allclose(a, b)


def test_paper_size_shapes_and_parameter_count_equal_the_original():
  config = configs.load_config(str(REPO / "experiments" / "prism.py"))
  assert config.data.window == 2000 and config.model.center_len == 2000
  model = build_model(config.model, dtype=config.train.dtype, remat=config.train.remat)
  batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), Batch.zeros(8, 2000))

  def init_and_apply(key, b):
    params = model.init({"params": key}, b.dna, b.signals, b.rna_feat)["params"]
    return params, model.apply({"params": params}, b.dna, b.signals, b.rna_feat, train=True)

  params, out = jax.eval_shape(init_and_apply, KEY, batch)
  assert out.prediction.shape == out.intervention.shape == (8,)
  assert out.weights.shape == (8, 128, 2) and out.uniform.shape == ()
  count = sum(math.prod(x.shape) for x in jax.tree.leaves(params))
  assert count == original_prism(128, 4, 2, 8) == 585_681
