"""Properties of the model modules beyond the golden vectors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2exp_jax.model.baselines import GeneExpModel
from seq2exp_jax.model.caduceus import Caduceus
from seq2exp_jax.model.mamba import BiMamba, Mamba, dt_bias_init
from seq2exp_jax.model.seq2exp import Seq2Exp, pack_selected, packed_promoter_mean

KEY = jax.random.PRNGKey(0)


def _inputs(batch=2, length=64, seed=1, signals=3):
  k = jax.random.split(jax.random.PRNGKey(seed), 4)
  dna = jax.nn.one_hot(jax.random.randint(k[0], (batch, length), 0, 5), 4)  # 4 -> N row
  sig = jax.random.gamma(k[1], 0.5, (batch, length, signals))
  blacklist = jax.random.uniform(k[2], (batch, length)) < 0.1
  rna = jax.random.normal(k[3], (batch, 9))
  return dna, sig, blacklist, rna


def test_bimamba_reversed_input_with_swapped_directions_reverses_output():
  u = jax.random.normal(KEY, (2, 40, 16))
  model = BiMamba(d_model=16)
  params = model.init(KEY, u)["params"]
  swapped = dict(params, mamba_fwd=params["mamba_rev"], mamba_rev=params["mamba_fwd"])
  out = model.apply({"params": params}, u)
  out_rev = model.apply({"params": swapped}, jnp.flip(u, axis=1))
  np.testing.assert_allclose(out_rev, jnp.flip(out, axis=1), rtol=1e-5, atol=1e-6)
  # And the two directions really differ (otherwise the test above proves nothing).
  assert not np.allclose(model.apply({"params": params}, jnp.flip(u, axis=1)),
                         jnp.flip(out, axis=1), atol=1e-4)


def test_unidirectional_mamba_is_causal():
  u = jax.random.normal(KEY, (1, 30, 16))
  model = Mamba(d_model=16)
  params = model.init(KEY, u)
  out = model.apply(params, u)
  out2 = model.apply(params, u.at[:, 20].add(1.0))
  np.testing.assert_array_equal(out[:, :20], out2[:, :20])
  assert not np.allclose(out[:, 20:], out2[:, 20:])


def test_initialisation_follows_mamba_ssm():
  model = Caduceus(d_model=32, n_layer=2, init_n_layer=64)
  params = model.init(KEY, jnp.zeros((1, 8, 32)))["params"]
  stacked = params["layers"]["mixer"]["in_proj"]["kernel"]
  assert stacked.shape[0] == 2 and not np.allclose(stacked[0], stacked[1])  # own init per layer
  mixer = jax.tree.map(lambda x: x[0], params["layers"]["mixer"])  # first of the stacked layers
  ssm = mixer["mamba_fwd"]
  np.testing.assert_allclose(ssm["A_log"], np.log(np.broadcast_to(np.arange(1, 17), (64, 16))),
                             rtol=1e-6)
  np.testing.assert_array_equal(ssm["D"], 1.0)
  dt = jax.nn.softplus(ssm["dt_proj"]["bias"])
  assert float(dt.min()) >= 1e-3 * 0.999 and float(dt.max()) <= 0.1 * 1.001
  # out_proj: U(+-1/sqrt(E)) rescaled by 1/sqrt(n_layer=64) = 1/8.
  bound = 1 / math.sqrt(64) / 8
  w = np.asarray(mixer["out_proj"]["kernel"])
  assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
  np.testing.assert_array_equal(params["norm_f"]["scale"], 1.0)
  assert np.abs(np.asarray(mixer["in_proj"]["kernel"])).max() <= 1 / math.sqrt(32)


def test_dt_bias_is_inverse_softplus_of_log_uniform_dt():
  b = dt_bias_init()(KEY, (20_000,))
  log_dt = np.log(np.asarray(jax.nn.softplus(b)))
  # log-uniform on [log 1e-3, log 0.1]: mean at the midpoint, flat quartiles.
  assert abs(log_dt.mean() - (math.log(1e-3) + math.log(0.1)) / 2) < 0.05


def test_remat_gives_identical_gradients():
  x = jax.random.normal(KEY, (1, 32, 16))
  plain, remat = Caduceus(d_model=16, n_layer=2), Caduceus(d_model=16, n_layer=2, remat=True)
  params = plain.init(KEY, x)
  g1 = jax.grad(lambda p: jnp.sum(plain.apply(p, x) ** 2))(params)
  g2 = jax.grad(lambda p: jnp.sum(remat.apply(p, x) ** 2))(params)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


SMALL = dict(d_model=16, n_gen_layer=1, n_enc_layer=1, center_len=8)
HARD = dict(SMALL, share_generator=True, pos_enc=True, seq_range=64, hard=True,
            prior_scale_factor=1.0, beta_min=0.0, marginal_mean=0.45, marginal_scale=0.1)


def test_soft_overrides_and_training_sample():
  dna, sig, bl, rna = _inputs()
  model = Seq2Exp(**SMALL)
  params = model.init(KEY, dna, sig, bl, rna)
  out = model.apply(params, dna, sig, bl, rna)
  c0 = (64 - 8) // 2
  np.testing.assert_array_equal(out.mask[:, c0:c0 + 8], 1.0)  # promoter wins
  outside = np.ones(64, bool)
  outside[c0:c0 + 8] = False
  assert np.all(np.asarray(out.mask)[np.asarray(bl) & outside[None]] == 0.0)
  free = ~np.asarray(bl) & outside[None]  # neither blacklisted nor promoter: the Beta mean
  z_mean = np.asarray(out.z_alpha / (out.z_alpha + out.z_beta))
  np.testing.assert_allclose(np.asarray(out.mask)[free], z_mean[free], rtol=1e-6)
  # Training draws a mask from the key; same key -> same draw; gradients are finite.
  train = lambda p, k: model.apply(p, dna, sig, bl, rna, train=True, rngs={"mask": k})  # noqa: E731
  a, b = train(params, jax.random.PRNGKey(1)), train(params, jax.random.PRNGKey(1))
  np.testing.assert_array_equal(a.mask, b.mask)
  assert not np.allclose(a.mask, out.mask)
  grads = jax.grad(lambda p: jnp.sum(train(p, KEY).prediction) + train(p, KEY).kl)(params)
  gen = grads["params"]["generator"]
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert any(np.abs(g).max() > 0 for g in jax.tree.leaves(gen))


def test_pack_selected_matches_a_loop():
  rng = np.random.default_rng(0)
  rows = rng.normal(size=(3, 20, 4)).astype(np.float32)
  sel = rng.random((3, 20)) < 0.4
  packed, overflow = pack_selected(jnp.asarray(rows), jnp.asarray(sel), 6)
  for b in range(3):
    want = rows[b][sel[b]][:6]
    np.testing.assert_array_equal(packed[b, :len(want)], want)
    np.testing.assert_array_equal(packed[b, len(want):], 0.0)
    assert int(overflow[b]) == max(sel[b].sum() - 6, 0)


def test_packed_promoter_mean_uses_original_index():
  mask = np.zeros((1, 16), np.float32)
  mask[0, [1, 3, 6, 7, 8, 9, 12]] = 1.0  # 4 selected before L/2 = 8
  hidden = jnp.arange(16, dtype=jnp.float32).reshape(1, 16, 1) * jnp.ones((1, 1, 2))
  # start = 4 - center_len // 2 = 3 -> rows 3 and 4 of the packed sequence.
  got = packed_promoter_mean(hidden, jnp.asarray(mask), 2)
  np.testing.assert_allclose(got, [[3.5, 3.5]])


def test_hard_variant_packs_and_shares_generator():
  dna, sig, bl, rna = _inputs()
  model = Seq2Exp(**HARD)
  params = model.init(KEY, dna, sig, bl, rna)
  assert "encoder" not in params["params"] and "pos_emb" in params["params"]
  out = model.apply(params, dna, sig, bl, rna)
  assert set(np.unique(np.asarray(out.mask))) <= {0.0, 1.0}
  count = int(jnp.max(jnp.sum(out.mask == 1.0, axis=1)))
  # Capacity = batch maximum (exact parity) vs the full window: padding changes outputs of
  # a bidirectional encoder, as in the original.
  exact = model.apply(params, dna, sig, bl, rna, capacity=count)
  assert int(exact.overflow.max()) == 0
  small = model.apply(params, dna, sig, bl, rna, capacity=count - 3)
  assert int(small.overflow.max()) == 3
  # Straight-through training: prediction-loss gradients do not reach the generator through
  # the mask, but the shared encoder/generator still learns.
  grads = jax.grad(lambda p: jnp.sum(model.apply(
      p, dna, sig, bl, rna, train=True, rngs={"mask": KEY}).prediction))(params)
  assert np.abs(np.asarray(grads["params"]["generator"]["norm_f"]["scale"])).max() > 0
  assert np.abs(np.asarray(grads["params"]["mask_output"]["kernel"])).max() == 0


def test_fixed_mask_mode_has_no_generator():
  dna, sig, bl, rna = _inputs()
  model = Seq2Exp(**SMALL, mask_source="input")
  peaks = jnp.zeros((2, 64)).at[:, 5:15].set(1.0)
  params = model.init(KEY, dna, sig, bl, rna, mask=peaks)
  assert set(params["params"]) == {"seq_input_layer", "signal_input_layer", "encoder",
                                   "pToExpr"}
  out = model.apply(params, dna, sig, bl, rna, mask=peaks)
  assert float(out.kl) == 0.0
  # Only the masked positions matter: changing the DNA outside the mask changes nothing.
  keep = np.asarray(out.mask) > 0
  dna2 = jnp.where(jnp.asarray(keep)[..., None], dna, jnp.roll(dna, 1, axis=-1))
  np.testing.assert_allclose(model.apply(params, dna2, sig, bl, rna, mask=peaks).prediction,
                             out.prediction, rtol=1e-6)
  with pytest.raises(ValueError, match="needs the mask"):
    model.apply(params, dna, sig, bl, rna)


@pytest.mark.parametrize("backbone,use_signals", [("caduceus", False), ("caduceus", True),
                                                  ("mamba", True), ("hyena", True)])
def test_baselines_forward_and_grad(backbone, use_signals):
  dna, sig, _, rna = _inputs(length=32)
  model = GeneExpModel(backbone=backbone, use_signals=use_signals, d_model=16, n_layer=2,
                       center_len=8)
  params = model.init(KEY, dna, sig, rna)
  pred = model.apply(params, dna, sig, rna)
  assert pred.shape == (2, 1) and pred.dtype == jnp.float32
  grads = jax.grad(lambda p: jnp.sum(model.apply(p, dna, sig, rna)))(params)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  sig2 = sig + 1.0
  changed = not np.allclose(model.apply(params, dna, sig2, rna), pred)
  assert changed == use_signals


def test_bf16_compute_keeps_bottleneck_in_float32():
  dna, sig, bl, rna = _inputs()
  f32 = Seq2Exp(**SMALL)
  bf16 = Seq2Exp(**SMALL, dtype=jnp.bfloat16)
  params = f32.init(KEY, dna, sig, bl, rna)
  a, b = f32.apply(params, dna, sig, bl, rna), bf16.apply(params, dna, sig, bl, rna)
  for x in (b.z_alpha, b.mask, b.kl, b.prediction):
    assert x.dtype == jnp.float32
  assert jax.tree.leaves(params)[0].dtype == jnp.float32
  np.testing.assert_allclose(b.prediction, a.prediction, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("variant", ["soft", "hard"])
def test_paper_size_shapes_at_200kb(variant):
  """eval_shape (no compute) at paper size, L = 200,000, B = 8."""
  length, batch = 200_000, 8
  kw = dict(d_model=128, n_gen_layer=4, n_enc_layer=4, remat=True)
  if variant == "hard":
    kw.update(share_generator=True, pos_enc=True, seq_range=length, hard=True,
              capacity=length // 2)
  model = Seq2Exp(**kw)
  args = (jax.ShapeDtypeStruct((batch, length, 4), jnp.float32),
          jax.ShapeDtypeStruct((batch, length, 3), jnp.float32),
          jax.ShapeDtypeStruct((batch, length), jnp.bool_),
          jax.ShapeDtypeStruct((batch, 9), jnp.float32))
  params = jax.eval_shape(lambda *a: model.init(KEY, *a), *args)
  train = lambda p, *a: model.apply(p, *a, train=True, rngs={"mask": KEY})  # noqa: E731
  out = jax.eval_shape(train, params, *args)
  assert out.prediction.shape == (batch, 1) and out.mask.shape == (batch, length)
  grads = jax.eval_shape(jax.grad(lambda p, *a: train(p, *a).prediction.sum()), params, *args)
  assert jax.tree.structure(grads) == jax.tree.structure(params)
