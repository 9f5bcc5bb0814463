"""EPInformer: empty slots change nothing, elements reach each other only through the
promoter, the paper-size shapes and parameter count (the original's, counted from its
code), and bf16 stays finite and close to float32."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from conftest import REPO
from data_pipeline.batch import ELEMENT_SLOTS, ELEMENT_WIDTH, Batch
from seq2exp_jax.config import loader as configs
from seq2exp_jax.model.epinformer import EPInformer, attention_allowed
from seq2exp_jax.train.task import build_task

SMALL = dict(out_dim=16, n_encoder=1, heads=2, stem_width=8, tower_widths=(8, 8),
             out_widths=(8, 8), head_width=16)


def _elements(batch=2, slots=6, width=256, seed=0, n_valid=4):
  rng = np.random.default_rng(seed)
  dna = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (batch, slots, width))]
  feat = rng.normal(size=(batch, slots, 3)).astype(np.float32)
  valid = np.zeros((batch, slots), bool)
  valid[:, :n_valid] = True
  dna[~valid], feat[~valid] = 0.0, 0.0
  feat[:, 0] = 0.0
  return dna, feat, valid


def _call(model, params, dna, feat, valid, **kw):
  b = dna.shape[0]
  dna, feat, valid = map(jnp.asarray, (dna, feat, valid))
  rna = jnp.asarray(np.random.default_rng(1).normal(size=(b, 9)), jnp.float32)
  return model.apply({"params": params}, jnp.zeros((b, 8, 4)), jnp.zeros((b, 8, 3)), rna,
                     element_dna=dna, element_feat=feat, element_valid=valid, **kw)


def _init(model, dna, feat, valid):
  dna, feat, valid = map(jnp.asarray, (dna, feat, valid))
  return jax.jit(lambda: model.init(
      jax.random.PRNGKey(0), jnp.zeros((1, 8, 4)), jnp.zeros((1, 8, 3)), jnp.zeros((1, 9)),
      element_dna=dna[:1], element_feat=feat[:1], element_valid=valid[:1]))()["params"]


def test_an_empty_slot_changes_nothing_whatever_it_holds():
  model = EPInformer(**SMALL)
  dna, feat, valid = _elements()
  params = _init(model, dna, feat, valid)
  base = _call(model, params, dna, feat, valid).prediction
  rng = np.random.default_rng(5)
  junk_dna, junk_feat = dna.copy(), feat.copy()
  junk_dna[:, 4:] = np.eye(4, dtype=np.float32)[rng.integers(0, 4, junk_dna[:, 4:].shape[:-1])]
  junk_feat[:, 4:] = rng.normal(size=junk_feat[:, 4:].shape) * 10
  junk = _call(model, params, junk_dna, junk_feat, valid).prediction
  np.testing.assert_allclose(junk, base, rtol=1e-5, atol=1e-6)
  # ...while the same slot marked present does change the prediction.
  valid_more = valid.copy()
  valid_more[:, 4] = True
  moved = _call(model, params, junk_dna, junk_feat, valid_more).prediction
  assert np.abs(np.asarray(moved - base)).max() > 1e-4


def _hidden(model, params, dna, feat, valid):
  """Each attention layer's output (B M D), in layer order."""
  _, state = _call(model, params, dna, feat, valid, capture_intermediates=True,
                   mutable=["intermediates"])
  inter = state["intermediates"]
  return [np.asarray(inter[f"attn_{i}"]["__call__"][0]) for i in range(model.n_encoder)]


def test_elements_reach_each_other_only_through_the_promoter():
  """Changing element 2: after one layer element 3's state is unchanged and the promoter's
  moved; after a second layer element 3 moves too (it reads the promoter)."""
  model = EPInformer(**{**SMALL, "n_encoder": 2})
  dna, feat, valid = _elements()
  params = _init(model, dna, feat, valid)
  other = dna.copy()
  other[:, 2] = np.roll(other[:, 2], 7, axis=-1)  # another sequence in slot 2
  before, after = _hidden(model, params, dna, feat, valid), _hidden(model, params, other,
                                                                    feat, valid)
  np.testing.assert_allclose(after[0][:, 3], before[0][:, 3], rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(after[0][:, 1], before[0][:, 1], rtol=1e-6, atol=1e-6)
  assert np.abs(after[0][:, 0] - before[0][:, 0]).max() > 1e-4
  assert np.abs(after[0][:, 2] - before[0][:, 2]).max() > 1e-4
  assert np.abs(after[1][:, 3] - before[1][:, 3]).max() > 1e-5


def test_the_attention_pattern_is_the_originals():
  """EPInformer.py 163-166 (True there = not allowed) and the key padding mask (230)."""
  m = 5
  blocked = ~np.identity(m).astype(bool)
  blocked[:, 0] = blocked[0, :] = False
  valid = np.array([[True, True, True, False, True]])
  want = ~blocked[None] & valid[:, None, :]
  np.testing.assert_array_equal(np.asarray(attention_allowed(jnp.asarray(valid))), want)


def original_epinformer_v2_count(out_dim=64, n_encoder=3, n_extra=3, rna=9, length=2000
                                 ) -> int:
  """Trainable parameters of the original EPInformer_v2 (Seq2Exp repo,
  src/models/sequence/EPInformer.py) with useBN, useLN, useFeat, usePromoterSignal. Counted
  from its code; instantiating it in torch 2.13 with the paper's arguments gives 447,341
  (sum of p.numel() for p in parameters(); BatchNorm running stats are buffers)."""
  conv = lambda i, o, k: i * o * k + o  # noqa: E731  Conv2d (1, k) with bias
  bn = lambda c: 2 * c  # noqa: E731  BatchNorm2d weight + bias
  stem = conv(4, 256, 8)  # line 20
  dims = [256, 128, 64, 64, 128]  # lines 24-34
  tower = sum(conv(dims[i], dims[i + 1], 3) + bn(dims[i + 1]) +
              conv(dims[i + 1], dims[i + 1], 1) for i in range(4))
  w = length // 16 - 2 * (2 + 4 + 6)  # 125 after 4 pools, then the dilated convs: 101
  conv_out = (conv(128, 64, 3) + bn(64) + 2 * (conv(64, 64, 3) + bn(64)) + conv(64, 32, 1)
              + bn(32) + w * (out_dim // 32) + out_dim // 32)  # lines 170-186
  d = out_dim
  add_pos = (d + n_extra) * d + d + d * d + d  # lines 221-226
  layer = 4 * (d * d + d) + 2 * 2 * d + (d * 4 * d + 4 * d) + (4 * d * d + d)  # 75-98
  head = (d + rna) * 128 + 128 + 128 * 128 + 128 + 128 + 1  # lines 206-212
  return stem + tower + conv_out + add_pos + n_encoder * layer + head


def test_paper_size_shapes_and_parameter_count_equal_the_originals():
  config = configs.load_config(str(REPO / "experiments" / "epinformer.py"))
  task = build_task(config)
  batch = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                       Batch.zeros(2, 2000, elements=True))
  params = jax.eval_shape(lambda b: task.init(jax.random.PRNGKey(0), b), batch)
  out = jax.eval_shape(lambda p, b: task.apply(p, b), params, batch)
  assert out.prediction.shape == (2,) and out.mask is None
  assert batch.element_dna.shape == (2, ELEMENT_SLOTS, ELEMENT_WIDTH, 4)
  count = sum(math.prod(x.shape) for x in jax.tree.leaves(params))
  assert count == original_epinformer_v2_count() == 447_341
  assert params["seq_encoder"]["out_length"]["kernel"].shape == (101, 2)  # Linear(101, 2)


def test_bfloat16_stays_finite_and_near_float32():
  dna, feat, valid = _elements(width=2000)
  f32 = EPInformer(**SMALL)
  params = _init(f32, dna, feat, valid)
  want = np.asarray(_call(f32, params, dna, feat, valid).prediction)
  bf16 = EPInformer(**SMALL, dtype=jnp.bfloat16, remat=True)
  got = _call(bf16, params, dna, feat, valid)
  assert got.prediction.dtype == jnp.float32 and np.isfinite(got.prediction).all()
  np.testing.assert_allclose(got.prediction, want, atol=0.05 + 0.05 * np.abs(want).max())
