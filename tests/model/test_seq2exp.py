"""Seq2Exp and its pieces (BetaMask, packing, the region rules): properties beyond the
golden vectors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2exp_jax.model.beta_mask import BetaMask
from seq2exp_jax.model.packing import pack_selected, packed_promoter_mean
from seq2exp_jax.model.layers import transform_signals
from seq2exp_jax.model.pooling import WindowPool
from seq2exp_jax.model.promoter import apply_region_rules, contact_pool, promoter_positions
from seq2exp_jax.model.seq2exp import Seq2Exp
from seq2exp_jax.model.ssm_config import SSMConfig

KEY = jax.random.PRNGKey(0)
SMALL = dict(backbone=SSMConfig(d_model=16, init_n_layer=64), n_gen_layer=1, n_enc_layer=1,
             center_len=8)
HARD_MASK = BetaMask(prior_scale_factor=1.0, beta_min=0.0, marginal_mean=0.45,
                     marginal_scale=0.1, hard=True)
HARD = dict(SMALL, bottleneck=HARD_MASK, share_generator=True, pos_enc=True,
            pack_selected=True)


def _inputs(batch=2, length=64, seed=1, signals=3):
  k = jax.random.split(jax.random.PRNGKey(seed), 4)
  dna = jax.nn.one_hot(jax.random.randint(k[0], (batch, length), 0, 5), 4)  # 4 -> N row
  sig = jax.random.gamma(k[1], 0.5, (batch, length, signals))
  blacklist = jax.random.uniform(k[2], (batch, length)) < 0.1
  rna = jax.random.normal(k[3], (batch, 9))
  return dna, sig, rna, blacklist


def test_soft_overrides_and_training_sample():
  dna, sig, rna, bl = _inputs()
  model = Seq2Exp(**SMALL)
  params = model.init(KEY, dna, sig, rna, bl)
  out = model.apply(params, dna, sig, rna, bl)
  assert out.prediction.shape == (2,)
  c0 = (64 - 8) // 2
  np.testing.assert_array_equal(out.mask[:, c0:c0 + 8], 1.0)  # promoter wins
  outside = ~promoter_positions(64, 8)
  assert np.all(np.asarray(out.mask)[np.asarray(bl) & outside[None]] == 0.0)
  free = ~np.asarray(bl) & outside[None]  # neither blacklisted nor promoter: the Beta mean
  d = out.distribution
  z_mean = np.asarray(d.z_alpha / (d.z_alpha + d.z_beta))
  np.testing.assert_allclose(np.asarray(out.mask)[free], z_mean[free], rtol=1e-6)
  # Training draws a mask from the key; same key -> same draw; gradients are finite.
  train = lambda p, k: model.apply(p, dna, sig, rna, bl, train=True, rngs={"mask": k})  # noqa: E731
  a, b = train(params, jax.random.PRNGKey(1)), train(params, jax.random.PRNGKey(1))
  np.testing.assert_array_equal(a.mask, b.mask)
  assert not np.allclose(a.mask, out.mask)
  grads = jax.grad(lambda p: jnp.sum(train(p, KEY).prediction) + train(p, KEY).kl)(params)
  gen = grads["params"]["generator"]
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert any(np.abs(g).max() > 0 for g in jax.tree.leaves(gen))


def test_beta_mask_combines_generator_and_signal_priors():
  """The combined Beta's concentrations are the generator's plus the weighted track priors,
  and the mask at evaluation is their mean (or its threshold when hard)."""
  logits = jax.random.normal(KEY, (1, 5, 2))
  signals = jnp.abs(jax.random.normal(jax.random.PRNGKey(2), (1, 5, 3)))
  mask = BetaMask(prior_scale_factor=10.0, beta_min=1.0)
  m, kl, d = mask.apply({}, logits, signals)
  w = np.array([2, 2, 1]) / 5
  a1 = np.log1p(np.exp(np.asarray(logits[..., 1]))) + 1.0
  b1 = np.log1p(np.exp(np.asarray(logits[..., 0]))) + 1.0
  a2 = ((np.asarray(signals) + 1.0) * 10.0) @ w
  b2 = ((np.array([1.5, 0.2, 1.0]) + 1.0) * 10.0) @ w
  np.testing.assert_allclose(d.z_alpha, a1 + a2, rtol=1e-5)
  np.testing.assert_allclose(d.z_beta, b1 + b2, rtol=1e-5)
  np.testing.assert_allclose(m, (a1 + a2) / (a1 + a2 + b1 + b2), rtol=1e-5)
  assert kl.shape == () and float(kl) > 0
  hard, _, _ = BetaMask(hard=True, threshold=0.2).apply({}, logits, signals)
  np.testing.assert_array_equal(hard, (np.asarray(m) >= 0.2).astype(np.float32))
  with pytest.raises(ValueError, match="signals have 2 tracks"):
    mask.apply({}, logits, signals[..., :2])


@pytest.mark.parametrize("fields,message", [
    (dict(prior_beta=(1.0, 2.0)), "one value per signal track"),
    (dict(marginal_mean=1.5), "marginal_mean"),
    (dict(threshold=-0.1), "threshold"),
    (dict(beta_min=-1.0), "beta_min"),
    (dict(prior_scale_factor=0.0), "prior_scale_factor"),
])
def test_bad_beta_mask_fields_are_refused(fields, message):
  with pytest.raises(ValueError, match=message):
    BetaMask(**fields)


@pytest.mark.parametrize("fields,message", [
    (dict(bottleneck=BetaMask(), pack_selected=True), "pack_selected=True with a soft"),
    (dict(bottleneck=None, share_generator=True), "share_generator=True needs a learned"),
    (dict(bottleneck=None, gen_signal=True), "gen_signal=True needs a learned"),
    (dict(share_generator=True, n_enc_layer=2), "n_enc_layer=2 must equal n_gen_layer=1"),
    (dict(seq_range=64), "seq_range=64 .* needs pos_enc=True"),
    (dict(capacity=32), "capacity=32 .* needs pack_selected=True"),
    (dict(bottleneck=HARD_MASK, pack_selected=True, capacity=4), "capacity=4: expected >="),
    (dict(bottleneck=HARD_MASK, pack_selected=True, center_len=7), "even center_len"),
    (dict(n_gen_layer=0), "n_gen_layer=0"),
])
def test_invalid_field_combinations_are_refused_by_name(fields, message):
  with pytest.raises(ValueError, match=message):
    Seq2Exp(**dict(SMALL, **fields))


def test_pos_enc_with_a_soft_mask_reads_the_whole_window():
  """The position embedding no longer switches packing on: a soft-mask model with pos_enc
  reads every position (before, it packed the promoter only)."""
  dna, sig, rna, bl = _inputs()
  model = Seq2Exp(**SMALL, pos_enc=True)
  params = model.init(KEY, dna, sig, rna, bl)
  assert params["params"]["pos_emb"].shape == (64, 16)  # the window of the first call
  out = model.apply(params, dna, sig, rna, bl)
  outside = ~promoter_positions(64, 8)
  shifted = sig.at[:, np.flatnonzero(outside)[:5]].add(5.0)  # signals outside the promoter
  assert not np.allclose(model.apply(params, dna, shifted, rna, bl).prediction,
                         out.prediction)


def test_region_rules_blacklist_then_promoter():
  mask = jnp.full((1, 10), 0.5)
  blacklist = jnp.zeros((1, 10), bool).at[0, [0, 4]].set(True)
  out = apply_region_rules(mask, blacklist, center_len=2)
  np.testing.assert_array_equal(out, [[0, .5, .5, .5, 1, 1, .5, .5, .5, .5]])


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
  dna, sig, rna, bl = _inputs()
  model = Seq2Exp(**HARD)
  params = model.init(KEY, dna, sig, rna, bl)
  assert "encoder" not in params["params"] and "pos_emb" in params["params"]
  out = model.apply(params, dna, sig, rna, bl)
  assert set(np.unique(np.asarray(out.mask))) <= {0.0, 1.0}
  count = int(jnp.max(jnp.sum(out.mask == 1.0, axis=1)))
  # Capacity = batch maximum (exact parity) vs the full window: padding changes outputs of
  # a bidirectional encoder, as in the original.
  exact = model.apply(params, dna, sig, rna, bl, capacity=count)
  assert int(exact.overflow.max()) == 0
  small = model.apply(params, dna, sig, rna, bl, capacity=count - 3)
  assert int(small.overflow.max()) == 3
  # Straight-through training: prediction-loss gradients do not reach the generator through
  # the mask, but the shared encoder/generator still learns.
  grads = jax.grad(lambda p: jnp.sum(model.apply(
      p, dna, sig, rna, bl, train=True, rngs={"mask": KEY}).prediction))(params)
  assert np.abs(np.asarray(grads["params"]["generator"]["norm_f"]["scale"])).max() > 0
  assert np.abs(np.asarray(grads["params"]["mask_output"]["kernel"])).max() == 0


def test_fixed_mask_mode_has_no_generator():
  dna, sig, rna, bl = _inputs()
  model = Seq2Exp(**SMALL, bottleneck=None)
  peaks = jnp.zeros((2, 64)).at[:, 5:15].set(1.0)
  params = model.init(KEY, dna, sig, rna, bl, mask=peaks)
  assert set(params["params"]) == {"seq_input_layer", "signal_input_layer", "encoder",
                                   "pToExpr"}
  out = model.apply(params, dna, sig, rna, bl, mask=peaks)
  assert float(out.kl) == 0.0 and out.distribution is None
  # Only the masked positions matter: changing the DNA outside the mask changes nothing.
  keep = np.asarray(out.mask) > 0
  dna2 = jnp.where(jnp.asarray(keep)[..., None], dna, jnp.roll(dna, 1, axis=-1))
  np.testing.assert_allclose(model.apply(params, dna2, sig, rna, bl, mask=peaks).prediction,
                             out.prediction, rtol=1e-6)
  with pytest.raises(ValueError, match="fixed mask is given exactly when bottleneck is None"):
    model.apply(params, dna, sig, rna, bl)
  with pytest.raises(ValueError, match="fixed mask is given exactly when bottleneck is None"):
    Seq2Exp(**SMALL).init(KEY, dna, sig, rna, bl, mask=peaks)


def test_bf16_compute_keeps_bottleneck_in_float32():
  dna, sig, rna, bl = _inputs()
  f32 = Seq2Exp(**SMALL)
  bf16 = Seq2Exp(**dict(SMALL, backbone=SSMConfig(d_model=16, init_n_layer=64,
                                                  dtype=jnp.bfloat16)))
  params = f32.init(KEY, dna, sig, rna, bl)
  a, b = f32.apply(params, dna, sig, rna, bl), bf16.apply(params, dna, sig, rna, bl)
  for x in (b.distribution.z_alpha, b.mask, b.kl, b.prediction):
    assert x.dtype == jnp.float32
  assert jax.tree.leaves(params)[0].dtype == jnp.float32
  np.testing.assert_allclose(b.prediction, a.prediction, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("variant", ["soft", "hard"])
def test_paper_size_shapes_at_200kb(variant):
  """eval_shape (no compute) at paper size, L = 200,000, B = 8."""
  length, batch = 200_000, 8
  kw = dict(backbone=SSMConfig(d_model=128, init_n_layer=64, remat=True), n_gen_layer=4,
            n_enc_layer=4)
  if variant == "hard":
    kw.update(bottleneck=HARD_MASK, share_generator=True, pos_enc=True, pack_selected=True,
              capacity=length // 2)
  model = Seq2Exp(**kw)
  args = (jax.ShapeDtypeStruct((batch, length, 4), jnp.float32),
          jax.ShapeDtypeStruct((batch, length, 3), jnp.float32),
          jax.ShapeDtypeStruct((batch, 9), jnp.float32),
          jax.ShapeDtypeStruct((batch, length), jnp.bool_))
  params = jax.eval_shape(lambda *a: model.init(KEY, *a), *args)
  train = lambda p, *a: model.apply(p, *a, train=True, rngs={"mask": KEY})  # noqa: E731
  out = jax.eval_shape(train, params, *args)
  assert out.prediction.shape == (batch,) and out.mask.shape == (batch, length)
  grads = jax.eval_shape(jax.grad(lambda p, *a: train(p, *a).prediction.sum()), params, *args)
  assert jax.tree.structure(grads) == jax.tree.structure(params)


def test_contact_pool_is_the_contact_and_mask_weighted_sum_outside_the_promoter():
  rng = np.random.default_rng(0)
  hidden = rng.normal(size=(2, 12, 3)).astype(np.float32)
  signals = rng.random((2, 12, 3)).astype(np.float32)
  mask = rng.random((2, 12)).astype(np.float32)
  got = contact_pool(jnp.asarray(hidden), jnp.asarray(signals), jnp.asarray(mask), 4, 2)
  want = np.zeros((2, 3))
  for b in range(2):
    for t in range(12):
      if not 4 <= t < 8:  # the promoter, (12 - 4) // 2 = 4 .. 7
        want[b] += mask[b, t] * (10.0 ** signals[b, t, 2] - 1.0) * hidden[b, t] / 12
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_abc_pool_is_the_log_of_a_contact_weighted_sum_of_scores():
  rng = np.random.default_rng(1)
  hidden = rng.normal(size=(2, 12, 3)).astype(np.float32)
  signals = rng.random((2, 12, 3)).astype(np.float32)
  mask = rng.random((2, 12)).astype(np.float32)
  pool = WindowPool("centre+abc", center_len=4, contact_track=2, abc_channels=2)
  args = tuple(map(jnp.asarray, (hidden, signals, mask)))
  params = pool.init(KEY, *args)
  got = np.asarray(pool.apply(params, *args))
  k, b0 = (np.asarray(params["params"]["abc_score"][n]) for n in ("kernel", "bias"))
  score = np.logaddexp(0.0, hidden @ k + b0)  # softplus
  want_sum = np.zeros((2, 2))
  for b in range(2):
    for t in range(12):
      if not 4 <= t < 8:
        want_sum[b] += mask[b, t] * (10.0 ** signals[b, t, 2] - 1.0) * score[b, t]
  np.testing.assert_allclose(got[:, :3], hidden[:, 4:8].mean(1), rtol=1e-5)
  np.testing.assert_allclose(got[:, 3:], np.log1p(want_sum / 4), rtol=1e-5)
  assert "params" not in WindowPool("centre", center_len=4).init(KEY, *args)


@pytest.mark.parametrize("pool, width", [("centre+contact", 2 * 16), ("centre+abc", 16 + 8)])
def test_pool_options_read_distal_elements_in_contact_only(pool, width):
  """With a pool option a distal position moves the prediction when it is in contact with
  the TSS, and not when its contact is zero."""
  dna, sig, rna, bl = _inputs()
  model = Seq2Exp(**SMALL, pool=pool, signal_transform="log1p")
  params = model.init(KEY, dna, sig, rna, bl)
  assert params["params"]["pToExpr"]["dense_0"]["kernel"].shape[0] == width + 9
  far = 2  # 30 positions from the promoter
  base = model.apply(params, dna, sig, rna, bl).prediction
  bumped = sig.at[:, far, :2].add(5.0)
  assert not np.allclose(model.apply(params, dna, bumped, rna, bl).prediction, base,
                         atol=1e-6)
  out_of_contact = sig.at[:, far, 2].set(0.0)
  grad = jax.grad(lambda s: jnp.sum(model.apply(params, dna, s, rna, bl).prediction))
  g_in, g_out = grad(sig), grad(out_of_contact)
  assert float(jnp.abs(g_in[:, far]).sum()) > float(jnp.abs(g_out[:, far]).sum())
  with pytest.raises(ValueError, match="pool='attention'"):
    Seq2Exp(**SMALL, pool="attention")
  with pytest.raises(ValueError, match="needs pack_selected=False"):
    Seq2Exp(**HARD, pool=pool)


def test_log1p_signal_transform_changes_the_embedding_not_the_prior():
  dna, sig, rna, bl = _inputs()
  raw = Seq2Exp(**SMALL)
  logged = Seq2Exp(**SMALL, signal_transform="log1p")
  params = raw.init(KEY, dna, sig, rna, bl)
  a, b = raw.apply(params, dna, sig, rna, bl), logged.apply(params, dna, sig, rna, bl)
  np.testing.assert_array_equal(a.distribution.prior_alpha, b.distribution.prior_alpha)
  assert not np.allclose(a.prediction, b.prediction)
  np.testing.assert_allclose(transform_signals(sig, "log1p", 2)[..., :2],
                             np.log1p(np.asarray(sig)[..., :2]), rtol=1e-6)
  np.testing.assert_array_equal(transform_signals(sig, "log1p", 2)[..., 2], sig[..., 2])
  with pytest.raises(ValueError, match="signal_transform='sqrt'"):
    Seq2Exp(**SMALL, signal_transform="sqrt")


def test_inert_padding_makes_any_capacity_above_the_count_give_the_window_result():
  """Nothing dropped means the same numbers: at capacity >= each row's selected count the
  packed predictor's prediction equals the capacity-L one (forward and gradient)."""
  dna, sig, rna, bl = _inputs(length=64)
  model = Seq2Exp(**HARD, inert_padding=True)
  params = model.init(KEY, dna, sig, rna, bl)
  window = model.apply(params, dna, sig, rna, bl)
  count = int(jnp.max(jnp.sum(window.mask == 1.0, axis=1)))
  assert count < 64 and int(jnp.min(jnp.sum(window.mask == 1.0, axis=1))) < count
  for capacity in (count, count + 5):
    out = model.apply(params, dna, sig, rna, bl, capacity=capacity)
    np.testing.assert_allclose(out.prediction, window.prediction, rtol=1e-6, atol=1e-6)
    assert int(out.overflow.max()) == 0

  def loss(p, capacity):
    return jnp.sum(model.apply(p, dna, sig, rna, bl, train=True, rngs={"mask": KEY},
                               capacity=capacity).prediction)
  drawn = model.apply(params, dna, sig, rna, bl, train=True, rngs={"mask": KEY}).mask
  drawn_count = int(jnp.max(jnp.sum(drawn == 1.0, axis=1)))
  assert drawn_count < 64
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               jax.grad(loss)(params, drawn_count), jax.grad(loss)(params, 64))
  # (Without inert_padding the padding is read: tests/model/test_mamba.py shows it.)
  with pytest.raises(ValueError, match="inert_padding=True .* needs pack_selected=True"):
    Seq2Exp(**SMALL, inert_padding=True)
