"""The original's mask and input options (BetaMask, Seq2Exp, the head): each a property
that would catch a wrong implementation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from seq2exp_jax.model import bottleneck, kumaraswamy
from seq2exp_jax.model.beta_mask import BetaMask
from seq2exp_jax.model.seq2exp import Seq2Exp
from seq2exp_jax.model.ssm_config import SSMConfig

KEY = jax.random.PRNGKey(0)
SMALL = dict(backbone=SSMConfig(d_model=16, init_n_layer=64), n_gen_layer=1, n_enc_layer=1,
             center_len=8)


def _mask_inputs(batch=2, length=200, seed=3):
  k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
  return (jax.random.normal(k1, (batch, length, 2)),
          jax.random.gamma(k2, 0.7, (batch, length, 3)))


def _model_inputs(batch=2, length=64, seed=1):
  k = jax.random.split(jax.random.PRNGKey(seed), 5)
  dna = jax.nn.one_hot(jax.random.randint(k[0], (batch, length), 0, 5), 4)
  sig = jax.random.gamma(k[1], 0.5, (batch, length, 3))
  rna = jax.random.normal(k[2], (batch, 9))
  include = jax.random.uniform(k[3], (batch, length)) < 0.2
  peaks = jax.random.uniform(k[4], (batch, length)) < 0.3
  return dna, sig, rna, include, peaks


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.013])
def test_test_top_keeps_exactly_k_positions(fraction):
  logits, signals = _mask_inputs()
  mean = BetaMask().apply({}, logits, signals)[0]
  top = BetaMask(test_top=fraction).apply({}, logits, signals)[0]
  k = int(200 * fraction)
  assert np.all(np.asarray(jnp.sum(top, axis=1)) == k)
  assert set(np.unique(np.asarray(top))) <= {0.0, 1.0}
  for row in range(2):  # exactly the k largest of the mean
    want = np.argsort(-np.asarray(mean[row]), kind="stable")[:k]
    assert set(np.flatnonzero(np.asarray(top[row]))) == set(want)
  soft = BetaMask(test_top=fraction, test_top_soft=True).apply({}, logits, signals)[0]
  np.testing.assert_array_equal(np.asarray(soft), np.where(np.asarray(top) == 1,
                                                           np.asarray(mean), 0.0))
  # Training draws are not affected: the option is the test-time mask.
  draw = BetaMask(test_top=fraction).apply({}, logits, signals, key=KEY)[0]
  np.testing.assert_array_equal(draw, BetaMask().apply({}, logits, signals, key=KEY)[0])


def test_gumbel_straight_through_is_exactly_binary_with_the_soft_gradient():
  logits, _ = _mask_inputs()
  weights = jax.random.normal(jax.random.PRNGKey(9), logits.shape[:2])
  hard = bottleneck.gumbel_straight_through(KEY, logits, 0.7)
  assert set(np.unique(np.asarray(hard))) == {0.0, 1.0}

  def soft(lg):  # the same noise, the soft sample's column 1
    noise = jax.random.gumbel(KEY, lg.shape, jnp.float32)
    return jax.nn.softmax((lg + noise) / 0.7, axis=-1)[..., 1]

  np.testing.assert_array_equal(np.asarray(hard), np.asarray(soft(logits) > 0.5, np.float32))
  g_hard = jax.grad(lambda lg: jnp.sum(
      bottleneck.gumbel_straight_through(KEY, lg, 0.7) * weights))(logits)
  g_soft = jax.grad(lambda lg: jnp.sum(soft(lg) * weights))(logits)
  np.testing.assert_allclose(g_hard, g_soft, rtol=1e-6, atol=1e-7)
  # Through BetaMask (post_sample=False): no KL; evaluation is the noise-free argmax.
  mask, kl, _ = BetaMask(post_sample=False, gumbel_temp=0.7).apply(
      {}, logits, _mask_inputs()[1], key=KEY)
  np.testing.assert_array_equal(mask, hard)
  assert float(kl) == 0.0
  evaluated = BetaMask(post_sample=False).apply({}, logits, _mask_inputs()[1])[0]
  np.testing.assert_array_equal(evaluated, np.asarray(logits[..., 1] > logits[..., 0],
                                                      np.float32))


@pytest.mark.parametrize("track,name", [(0, "h3k27ac"), (1, "DHS"), (2, "hic")])
def test_single_track_prior_is_the_full_prior_with_the_other_weights_zeroed(track, name):
  logits, signals = _mask_inputs()
  weights = tuple(2.0 if i == track else 0.0 for i in range(3))
  one = BetaMask(prior_signal=name)
  zeroed = BetaMask(prior_weight=weights)
  for key in (None, KEY):
    m1, kl1, d1 = one.apply({}, logits, signals, key=key)
    m0, kl0, d0 = zeroed.apply({}, logits, signals, key=key)
    np.testing.assert_allclose(d1.z_alpha, d0.z_alpha, rtol=1e-6)
    np.testing.assert_allclose(d1.z_beta, d0.z_beta, rtol=1e-6)
    np.testing.assert_allclose(m1, m0, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(kl1, kl0, rtol=1e-6)
  assert d1.prior_alpha.shape[-1] == 1
  np.testing.assert_allclose(d1.prior_alpha[..., 0], (signals[..., track] + 1.0) * 10 + 1e-8,
                             rtol=1e-6)


def test_coupled_kl_is_the_weighted_kl_of_the_generator_to_each_prior():
  logits, signals = _mask_inputs(length=40)
  mask, kl, d = BetaMask(decouple_x=False).apply({}, logits, signals)
  np.testing.assert_array_equal(d.z_alpha, d.post_alpha)
  np.testing.assert_allclose(mask, d.post_alpha / (d.post_alpha + d.post_beta), rtol=1e-6)
  w = np.array([2.0, 2.0, 1.0]) / 5
  want = sum(w[s] * np.mean(bottleneck.beta_kl(d.post_alpha, d.post_beta,
                                               d.prior_alpha[..., s], d.prior_beta[s]))
             for s in range(3))
  np.testing.assert_allclose(kl, want, rtol=1e-5)


def test_kumaraswamy_draw_mean_and_kl():
  a, b = 2.0, 3.0
  draws = np.asarray(kumaraswamy.sample(KEY, jnp.full((40_000,), a), jnp.full((40_000,), b)))
  cdf = lambda x: 1 - (1 - x ** a) ** b  # noqa: E731
  assert stats.kstest(draws, cdf).pvalue > 1e-3
  assert abs(float(kumaraswamy.mean(jnp.float32(a), jnp.float32(b))) - draws.mean()) < 4 * draws.std() / 200
  # The original's Taylor approximation follows the true KL (numerical integration).
  for a, b, alpha, beta in [(2.0, 3.0, 1.0, 4.0), (3.0, 5.0, 2.0, 2.0)]:
    pdf = lambda x, a=a, b=b: a * b * x ** (a - 1) * (1 - x ** a) ** (b - 1)  # noqa: E731
    true = integrate.quad(lambda x: pdf(x) * (np.log(pdf(x)) - stats.beta(alpha, beta)
                                              .logpdf(x)), 0, 1, limit=400)[0]
    assert abs(float(kumaraswamy.kl_to_beta(jnp.float32(a), jnp.float32(b), alpha, beta))
               - true) < 0.05 * true
  logits, signals = _mask_inputs(length=40)
  mask, kl, d = BetaMask(decouple_x=False, post_dist="kuma").apply({}, logits, signals)
  np.testing.assert_allclose(mask, kumaraswamy.mean(d.post_alpha, d.post_beta), rtol=1e-6)
  assert np.isfinite(float(kl))


def test_only_x_sig_is_the_prior_alone_and_the_generator_gets_no_gradient():
  logits, signals = _mask_inputs(length=40)
  mask_fn = BetaMask(only_x_sig=True)
  _, _, d = mask_fn.apply({}, logits, signals)
  np.testing.assert_allclose(d.z_alpha, jnp.einsum("blt,t->bl", d.prior_alpha, d.prior_mix),
                             rtol=1e-6)
  grad = jax.grad(lambda lg: jnp.sum(mask_fn.apply({}, lg, signals, key=KEY)[0]) +
                  mask_fn.apply({}, lg, signals)[1])(logits)
  assert not np.any(np.asarray(grad))


def test_pool_mask_is_a_centred_running_max():
  x = jax.random.uniform(KEY, (2, 30))
  pooled = np.asarray(bottleneck.smooth_max(x, 5))
  xs = np.pad(np.asarray(x), ((0, 0), (2, 2)), constant_values=-np.inf)
  np.testing.assert_array_equal(pooled, np.max(np.stack([xs[:, i:i + 30] for i in range(5)]),
                                               axis=0))
  logits, signals = _mask_inputs(length=40)
  hard = BetaMask(hard=True, pool_mask=5)
  mean = BetaMask(hard=True).distribution(logits, signals)
  want = bottleneck.hard_threshold(bottleneck.smooth_max(
      bottleneck.beta_mean(mean.z_alpha, mean.z_beta), 5))
  np.testing.assert_array_equal(hard.apply({}, logits, signals)[0], want)
  with pytest.raises(ValueError, match="pool_mask 4"):
    BetaMask(pool_mask=4)


def test_include_list_hard_override_and_prior_track():
  dna, sig, rna, include, _ = _model_inputs()
  blacklist = jnp.zeros_like(include).at[:, :10].set(True)
  model = Seq2Exp(**SMALL, include_list="hard")
  params = model.init(KEY, dna, sig, rna, blacklist, includelist=include)
  out = model.apply(params, dna, sig, rna, blacklist, includelist=include)
  assert np.all(np.asarray(out.mask)[np.asarray(include)] == 1.0)  # the include list wins
  plain = Seq2Exp(**SMALL).apply(params, dna, sig, rna, blacklist)
  rest = ~np.asarray(include)
  np.testing.assert_array_equal(np.asarray(out.mask)[rest], np.asarray(plain.mask)[rest])
  with pytest.raises(ValueError, match="include_list needs the call's includelist"):
    model.apply(params, dna, sig, rna, blacklist)
  # As a prior: one more track Beta(include_alpha * include + eps, eps) of weight include_weight.
  logits, signals = _mask_inputs(batch=2, length=64)
  mask_fn = BetaMask(include_alpha=10.0, include_weight=1.0)
  _, _, d = mask_fn.apply({}, logits, signals, includelist=include)
  np.testing.assert_allclose(d.prior_mix, np.array([2, 2, 1, 1]) / 6, rtol=1e-6)
  np.testing.assert_allclose(d.prior_alpha[..., 3], np.asarray(include) * 10.0 + 1e-8)
  base = BetaMask().apply({}, logits, signals)[2]
  extra = d.z_alpha - (d.post_alpha + jnp.einsum("blt,t->bl", d.prior_alpha[..., :3],
                                                 np.array([2, 2, 1]) / 6))
  np.testing.assert_allclose(extra, (np.asarray(include) * 10 + 1e-8) / 6, rtol=1e-5,
                             atol=2e-5)
  # Outside the include list the tracks' share shrinks from 1 to 5/6 of the mixture.
  np.testing.assert_allclose(d.z_beta, base.post_beta + (np.array([2.5, 1.2, 2.0]) * 10) @
                             (np.array([2, 2, 1]) / 6) + 1e-8 / 6, rtol=1e-5)


def test_merge_peak_mask_zeroes_the_signals_outside_the_peaks():
  dna, sig, rna, _, peaks = _model_inputs()
  merged = Seq2Exp(**SMALL, merge_peak_mask=True)
  params = merged.init(KEY, dna, sig, rna, peaks=peaks)
  out = merged.apply(params, dna, sig, rna, peaks=peaks)
  want = Seq2Exp(**SMALL).apply(params, dna, sig * peaks[..., None], rna)
  np.testing.assert_allclose(out.prediction, want.prediction, rtol=1e-6)
  np.testing.assert_array_equal(out.mask, want.mask)


def test_no_signal_input_and_no_rna_features():
  dna, sig, rna, _, _ = _model_inputs()
  model = Seq2Exp(**SMALL, use_signals=False, use_rna_feat=False)
  params = model.init(KEY, dna, sig, rna)
  assert "signal_input_layer" not in params["params"]
  assert params["params"]["pToExpr"]["dense_0"]["kernel"].shape[0] == 16
  out = model.apply(params, dna, sig, rna)
  np.testing.assert_array_equal(out.prediction, model.apply(params, dna, sig, rna * 5).prediction)
  # The predictor no longer reads the signals; the prior still does (the mask changes).
  other = model.apply(params, dna, sig * 3.0, rna)
  assert not np.allclose(other.mask, out.mask)


def test_learned_prior_constants_start_at_the_fixed_ones_and_get_gradients():
  logits, signals = _mask_inputs(length=40)
  learned = BetaMask(dist_param_grad=True)
  variables = learned.init(KEY, logits, signals)
  p = variables["params"]
  np.testing.assert_allclose(p["prior_weights"], np.log(np.array([2, 2, 1]) / 5), rtol=1e-6)
  np.testing.assert_allclose(p["signal_betas"], [1.5, 0.2, 1.0])
  fixed = BetaMask().apply({}, logits, signals, key=KEY)
  same = learned.apply(variables, logits, signals, key=KEY)
  np.testing.assert_allclose(same[0], fixed[0], rtol=1e-6)
  grads = jax.grad(lambda v: learned.apply(v, logits, signals, key=KEY)[1])(variables)
  assert np.all(np.abs(np.asarray(grads["params"]["signal_betas"])) > 0)
  assert np.any(np.abs(np.asarray(grads["params"]["prior_weights"])) > 0)
