"""Enformer (model/enformer.py) and its relative-position attention (model/attention.py):
the positional features against a plain loop over enformer-pytorch's formulas, the attention
logits against an explicit O(N^2) sum over j - i, shapes through the 2^7 downsampling and
the target crop, the paper size at 196,608 bp (eval_shape) with the original's parameter
count, what the model reads, and bf16."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO
from seq2exp_jax.config import loader as configs
from seq2exp_jax.model.attention import (RelativeAttention, positional_embedding,
                                         relative_logits, relative_shift)
from seq2exp_jax.model.enformer import AttentionPool, Enformer, crop_bins, filter_list
from seq2exp_jax.train.task import build_model

SMALL = dict(dim=48, depth=1, heads=2, attn_dim_key=8, dim_divisible_by=8, crop=1024,
             target_length=4)
# 3 downsamplings (8x): the same blocks, small enough to compile in seconds
TINY = dict(dim=24, depth=1, heads=2, attn_dim_key=4, dim_divisible_by=4, crop=64,
            target_length=4, num_downsamples=3)


def _loop_features(n: int, size: int) -> np.ndarray:
  """enformer-pytorch get_positional_embed (modeling_enformer.py:75-134), one distance
  and one basis function at a time, in float64."""
  f = size // 6
  lin = lambda a, b, i: a + i * (b - a) / (f - 1) if f > 1 else a  # torch.linspace  # noqa: E731
  rows = []
  for d in range(-n + 1, n):
    a = abs(d)
    half_lives = [2 ** lin(3, math.log2(n), i) for i in range(f)]
    expo = [math.exp(-math.log(2) / h * a) for h in half_lives]
    mask = [float(2 ** (i + 1) - 1 > a) for i in range(f)]
    stddev, start = n / (2 * f), n / f
    gamma = []
    for i in range(f):
      mean = lin(start, n, i)
      conc, rate = (mean / stddev) ** 2, mean / stddev ** 2
      # torch.xlogy(c - 1, 0) is -inf unless c == 1: every pdf is 0 at d = 0, then eps
      xlogy = (conc - 1) * math.log(a) if a > 0 else (0.0 if conc == 1 else -math.inf)
      log_p = xlogy - rate * a
      gamma.append(math.exp(log_p - (math.lgamma(conc) - conc * math.log(rate))) + 1e-8)
    gamma = [g / max(gamma) for g in gamma]
    row = expo + mask + gamma
    rows.append(row + [float(np.sign(d)) * v for v in row])
  return np.array(rows)


@pytest.mark.parametrize("n,size", [(5, 12), (16, 24), (37, 36)])
def test_positional_features_equal_a_loop_over_the_formulas(n, size):
  ours = np.asarray(positional_embedding(n, size))
  assert ours.shape == (2 * n - 1, size)
  np.testing.assert_allclose(ours, _loop_features(n, size), rtol=2e-4, atol=1e-6)


def test_attention_logits_equal_the_explicit_sum_over_relative_distance():
  b, h, n, k = 2, 3, 7, 4
  keys = jax.random.split(jax.random.PRNGKey(0), 5)
  q, kk = (jax.random.normal(keys[i], (b, h, n, k)) for i in (0, 1))
  rel_k = jax.random.normal(keys[2], (h, 2 * n - 1, k))
  u, v = (jax.random.normal(keys[i], (h, k)) for i in (3, 4))
  ours = np.asarray(relative_logits(q, kk, rel_k, u, v))
  q, kk, rel_k, u, v = map(np.asarray, (q, kk, rel_k, u, v))
  want = np.zeros((b, h, n, n))
  for i in range(n):
    for j in range(n):  # rel_k's row r is the distance r - (n - 1) = j - i
      want[:, :, i, j] = ((q[:, :, i] + u) * kk[:, :, j]).sum(-1) + (
          (q[:, :, i] + v) * rel_k[:, (n - 1) + (j - i)]).sum(-1)
  np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-5)


def test_the_position_term_depends_only_on_j_minus_i():
  n = 9
  x = jnp.broadcast_to(jnp.arange(2 * n - 1, dtype=jnp.float32) ** 2, (1, 2, n, 2 * n - 1))
  shifted = np.asarray(relative_shift(x))[0, 0]
  for i in range(n):
    for j in range(n):
      assert shifted[i, j] == float((n - 1 + j - i) ** 2)


def test_attention_module_equals_softmax_of_the_explicit_logits():
  """The module end to end (projections, features, heads, to_out) against numpy, with
  nonzero to_out (it is initialised to zero, as the original's)."""
  layer = RelativeAttention(heads=2, dim_key=4, dim_value=6, num_rel_pos_features=6)
  x = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 12))
  params = layer.init(jax.random.PRNGKey(2), x)["params"]
  params["to_out"]["kernel"] = jax.random.normal(jax.random.PRNGKey(3), (12, 12))
  ours = np.asarray(layer.apply({"params": params}, x))
  p = jax.tree.map(np.asarray, params)
  xn, n = np.asarray(x), 5
  split = lambda t, c: t.reshape(2, n, 2, c).transpose(0, 2, 1, 3)  # noqa: E731
  q = split(xn @ p["to_q"]["kernel"], 4) / 2.0
  k, v = split(xn @ p["to_k"]["kernel"], 4), split(xn @ p["to_v"]["kernel"], 6)
  rel = (_loop_features(n, 6) @ p["to_rel_k"]["kernel"]).reshape(-1, 2, 4)
  logits = np.zeros((2, 2, n, n))
  for i in range(n):
    for j in range(n):
      logits[:, :, i, j] = ((q[:, :, i] + p["rel_content_bias"]) * k[:, :, j]).sum(-1) + (
          (q[:, :, i] + p["rel_pos_bias"]) * rel[(n - 1) + (j - i)]).sum(-1)
  w = np.exp(logits - logits.max(-1, keepdims=True))
  w /= w.sum(-1, keepdims=True)
  out = (w @ v).transpose(0, 2, 1, 3).reshape(2, n, 12)
  want = out @ p["to_out"]["kernel"] + p["to_out"]["bias"]
  np.testing.assert_allclose(ours, want, rtol=2e-4, atol=2e-4)


def test_attention_pool_of_an_odd_length_gives_the_padding_no_weight():
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 7, 3))
  pool = AttentionPool()
  params = pool.init(jax.random.PRNGKey(0), x)
  out = np.asarray(pool.apply(params, x))
  assert out.shape == (1, 4, 3)
  np.testing.assert_allclose(out[0, 3], np.asarray(x)[0, 6], rtol=1e-6)  # alone in its pair
  pair = np.asarray(x)[0, :2]
  w = np.exp(2 * pair) / np.exp(2 * pair).sum(0)  # logits x (2 I)
  np.testing.assert_allclose(out[0, 0], (w * pair).sum(0), rtol=1e-5)


def test_paper_widths_and_the_target_crop():
  assert filter_list(1536, 7, 128) == [768, 768, 896, 1024, 1152, 1280, 1536]
  x = jnp.zeros((1, 1536, 2))
  assert crop_bins(x, 896).shape == (1, 896, 2)
  assert crop_bins(jnp.zeros((1, 128, 2)), 75).shape == (1, 74, 2)  # as TargetLengthCrop
  with pytest.raises(ValueError, match="fewer than target_length"):
    crop_bins(jnp.zeros((1, 8, 2)), 9)


def _inputs(batch: int, length: int, seed: int = 0):
  dna = jax.nn.one_hot(jax.random.randint(jax.random.PRNGKey(seed), (batch, length), 0, 4), 4)
  rna = jax.random.normal(jax.random.PRNGKey(seed + 1), (batch, 9))
  return dna, jnp.zeros((batch, length, 3)), rna


@pytest.mark.parametrize("length,bins", [(1024, 8), (1000, 8), (3000, 16)])
def test_downsampling_by_128_then_the_central_target_bins(length, bins):
  """A window longer than the crop (2,048) is cropped; an odd length pads before a pool."""
  model = Enformer(**{**SMALL, "crop": 2048})
  dna, signals, rna = _inputs(1, length)

  def trunk(key):
    params = model.init({"params": key, "mask": key}, dna, signals, rna)
    _, state = model.apply(params, dna, signals, rna, capture_intermediates=True,
                           mutable=["intermediates"])
    return state["intermediates"]

  seen = jax.eval_shape(trunk, jax.random.PRNGKey(0))
  assert seen["tower_5"]["__call__"][0].shape == (1, bins, 48)  # the transformer's input
  assert seen["final_pointwise"]["__call__"][0].shape == (1, 4, 96)


def test_it_reads_only_the_central_crop_of_the_dna_and_each_example_alone():
  model = Enformer(**TINY)
  dna, signals, rna = _inputs(2, 128)
  params = jax.jit(model.init)({"params": jax.random.PRNGKey(0)}, dna, signals, rna)
  predict = jax.jit(lambda d, s, r: model.apply(params, d, s, r).prediction)
  base = predict(dna, signals, rna)
  outside = dna.at[:, :32].set(jnp.roll(dna[:, :32], 1, axis=-1)).at[:, -32:].set(0.0)
  np.testing.assert_array_equal(predict(outside, signals + 1.0, rna), base)
  inside = dna.at[:, 64].set(jnp.roll(dna[:, 64], 1, axis=-1))
  assert np.all(np.abs(np.asarray(predict(inside, signals, rna) - base)) > 0)
  alone = predict(dna[1:], signals[1:], rna[1:])  # no statistics across the batch
  np.testing.assert_allclose(alone, base[1:], rtol=1e-5, atol=1e-6)


def test_dropout_only_when_training_and_from_the_mask_stream():
  model = Enformer(**TINY)
  dna, signals, rna = _inputs(2, 64)
  params = jax.jit(model.init)({"params": jax.random.PRNGKey(0)}, dna, signals, rna)
  run = jax.jit(lambda m, seed: m.apply(params, dna, signals, rna, train=True, rngs={
      "mask": jax.random.PRNGKey(seed)}).prediction, static_argnums=0)
  eval_ = jax.jit(lambda: model.apply(params, dna, signals, rna).prediction)()
  assert not np.allclose(run(model, 1), run(model, 2))
  off = model.clone(dropout_rate=0.0, attn_dropout=0.0, pos_dropout=0.0)
  np.testing.assert_allclose(run(off, 1), eval_, rtol=1e-5, atol=1e-6)


def _count(tree) -> int:
  return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def original_trunk(dim: int = 1536, depth: int = 11, heads: int = 8, key: int = 64,
                   num_downsamples: int = 7, divisible_by: int = 128) -> int:
  """Trainable params of enformer-pytorch 0.8.12's `Enformer._trunk` (modeling_enformer.py):
  stem 314-318, conv tower 322-333, transformer 342-369, final pointwise 378-384; BatchNorm
  has weight and bias (its running statistics are buffers)."""
  filters = filter_list(dim, num_downsamples, divisible_by)
  conv = lambda i, o, k: i * o * k + o  # noqa: E731
  block = lambda i, o, k: 2 * i + conv(i, o, k)  # ConvBlock: BatchNorm + Conv  # noqa: E731
  n = conv(4, filters[0], 15) + block(filters[0], filters[0], 1) + filters[0] ** 2
  for i, o in zip(filters[:-1], filters[1:]):
    n += block(i, o, 5) + block(o, o, 1) + o ** 2  # + AttentionPool's D x D map
  attention = (2 * dim * key * heads + dim * dim + (dim * dim + dim)  # q, k; v; to_out
               + (dim // heads) * key * heads + 2 * heads * key)  # to_rel_k, the rel biases
  feed_forward = 2 * dim + conv(dim, 2 * dim, 1) + conv(2 * dim, dim, 1)
  return n + depth * (2 * dim + attention + feed_forward) + block(dim, 2 * dim, 1)


def original_heads(dim: int = 1536, human: int = 5313, mouse: int = 1643) -> int:
  """The output heads the original builds (add_heads, line 406) and Seq2Exp never reads."""
  return (2 * dim + 1) * (human + mouse)


def p_to_expr(dim: int, d_model: int = 128, rna: int = 9) -> int:
  """GeneEnformer.pToExpr (src/models/sequence/Enformer.py): 2 dim + 9 -> 128 -> 128 -> 1."""
  return (2 * dim + rna) * d_model + d_model + d_model * d_model + d_model + d_model + 1


def test_paper_size_at_196608_bp_has_the_original_trunk_and_head_parameters():
  """enformer-pytorch's Enformer.from_hparams() instantiated with torch 2.13.0 (its file,
  transformers stubbed out) counts 229,845,504 trunk and 21,375,788 head parameters."""
  assert original_trunk() == 229_845_504 and original_heads() == 21_375_788
  config = configs.load_config(str(REPO / "experiments" / "enformer.py"))
  model = build_model(config.model, dtype=config.train.dtype, remat=config.train.remat)
  dna = jax.ShapeDtypeStruct((1, 200_000, 4), jnp.float32)
  z = (jnp.zeros((1, 200_000, 3)), jnp.zeros((1, 9)))

  def init_and_apply(key, dna):
    params = model.init({"params": key, "mask": key}, dna, *z)["params"]
    return params, model.apply({"params": params}, dna, *z, train=True, rngs={"mask": key})

  params, out = jax.eval_shape(init_and_apply, jax.random.PRNGKey(0), dna)
  assert out.prediction.shape == (1,)
  assert _count(params) == original_trunk() + p_to_expr(1536) == 230_256_641


def test_finite_in_bfloat16_and_close_to_float32():
  dna, signals, rna = _inputs(2, 64)
  f32 = Enformer(**TINY)
  params = jax.jit(f32.init)({"params": jax.random.PRNGKey(0)}, dna, signals, rna)
  bf16 = f32.clone(dtype=jnp.bfloat16, remat=True)

  @jax.jit
  def run(p):
    out = bf16.apply(p, dna, signals, rna, train=True, rngs={"mask": jax.random.PRNGKey(1)})
    grads = jax.grad(lambda q: bf16.apply(q, dna, signals, rna).prediction.sum())(p)
    return (out.prediction, grads, bf16.apply(p, dna, signals, rna).prediction,
            f32.apply(p, dna, signals, rna).prediction)

  train, grads, low, full = run(params)
  assert train.dtype == jnp.float32 and np.all(np.isfinite(train))
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  np.testing.assert_allclose(low, full, atol=0.05)
