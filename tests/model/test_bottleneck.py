"""Beta bottleneck: implicit reparameterisation gradients, closed-form KL, hard masks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from seq2exp_jax.model import bottleneck


@pytest.mark.parametrize("alpha,beta", [(0.5, 2.0), (2.0, 3.0), (10.0, 90.0), (0.3, 0.4)])
def test_sampler_gradients_match_analytic(alpha, beta):
  """Monte Carlo d/d(alpha, beta) of E[z] and E[z^2] agree with the closed forms (3 SE)."""
  n = 200_000
  key = jax.random.PRNGKey(7)

  def per_sample(a, b):
    z = bottleneck.beta_sample(key, jnp.full((n,), a), jnp.full((n,), b))
    return z, z ** 2

  # Per-sample gradients (each sample's z depends only on the shared a, b).
  jac = jax.jit(jax.jacfwd(per_sample, argnums=(0, 1)))(jnp.float32(alpha), jnp.float32(beta))
  s = alpha + beta
  # E[z] = a / s and E[z^2] = a (a + 1) / (s (s + 1)), differentiated in a and b.
  d2 = (s * (s + 1)) ** 2
  analytic = {
      (0, 0): beta / s ** 2,
      (0, 1): -alpha / s ** 2,
      (1, 0): ((2 * alpha + 1) * s * (s + 1) - alpha * (alpha + 1) * (2 * s + 1)) / d2,
      (1, 1): -alpha * (alpha + 1) * (2 * s + 1) / d2,
  }
  for moment in (0, 1):
    for param in (0, 1):
      g = np.asarray(jac[moment][param], np.float64)
      assert np.all(np.isfinite(g))
      se = g.std() / np.sqrt(n)
      assert abs(g.mean() - analytic[(moment, param)]) < 3 * se + 1e-6, (moment, param)


def test_sampler_distribution():
  z = bottleneck.beta_sample(jax.random.PRNGKey(0), jnp.full((50_000,), 2.0), 5.0)
  assert stats.kstest(np.asarray(z), stats.beta(2.0, 5.0).cdf).pvalue > 1e-3


def _kl_numeric(a1, b1, a2, b2):
  p, q = stats.beta(a1, b1), stats.beta(a2, b2)
  f = lambda z: p.pdf(z) * (p.logpdf(z) - q.logpdf(z))  # noqa: E731
  # Split at the bulk of p so quad resolves peaked densities (concentration 500).
  lo, hi = p.ppf(1e-12), p.ppf(1 - 1e-12)
  pts = sorted({lo, p.ppf(0.5), hi})
  return sum(integrate.quad(f, u, v, limit=400, epsabs=1e-12, epsrel=1e-10)[0]
             for u, v in zip(pts[:-1], pts[1:]))


@pytest.mark.parametrize("a1,b1,a2,b2", [
    (0.1, 0.1, 1.0, 1.0), (0.1, 2.0, 10.0, 90.0), (500.0, 3.0, 10.0, 90.0),
    (2.0, 500.0, 0.1, 0.12222224), (3.0, 7.0, 10.0, 90.0), (20.0, 30.0, 20.0, 30.0),
    (1.0, 0.5, 2.0, 2.0)])
def test_kl_matches_numerical_integration(a1, b1, a2, b2):
  got = float(bottleneck.beta_kl(a1, b1, a2, b2))
  want = _kl_numeric(a1, b1, a2, b2)
  assert got == pytest.approx(want, rel=2e-4, abs=2e-4)


def test_kl_is_zero_for_equal_distributions_and_float32():
  kl = bottleneck.beta_kl(jnp.asarray([3.0, 0.2], jnp.bfloat16), 4.0, jnp.asarray([3.0, 0.2]), 4.0)
  assert kl.dtype == jnp.float32
  np.testing.assert_allclose(kl, 0.0, atol=1e-5)


def test_straight_through_is_hard_forward_soft_backward():
  soft = jnp.asarray([0.2, 0.5, 0.7, 0.49999997])
  hard = bottleneck.straight_through(soft)
  np.testing.assert_array_equal(hard, [0.0, 1.0, 1.0, 0.0])
  assert bool(jnp.all(hard[soft >= 0.5] == 1.0))  # exact 1.0: `mask == 1` selects them
  np.testing.assert_allclose(jax.grad(lambda s: jnp.sum(bottleneck.straight_through(s) * 3.0))(soft),
                             3.0)
  np.testing.assert_array_equal(jax.grad(lambda s: jnp.sum(bottleneck.hard_threshold(s)))(soft), 0.0)


def test_beta_sample_matches_jax_draws_and_gradients():
  """Our vectorised implicit gradient is JAX's rule (which maps over elements on CPU)."""
  key = jax.random.PRNGKey(3)
  alpha = jnp.exp(jax.random.normal(jax.random.PRNGKey(1), (64,)) * 2.0)  # ~0.02 .. 50
  beta = jnp.exp(jax.random.normal(jax.random.PRNGKey(2), (64,)) * 2.0)
  ours = bottleneck.beta_sample(key, alpha, beta)
  np.testing.assert_array_equal(ours, jax.random.beta(key, alpha, beta, shape=(64,)))
  grad_ours = jax.grad(lambda a, b: jnp.sum(bottleneck.beta_sample(key, a, b) ** 2),
                       argnums=(0, 1))(alpha, beta)
  grad_jax = jax.grad(lambda a, b: jnp.sum(jax.random.beta(key, a, b, shape=(64,)) ** 2),
                      argnums=(0, 1))(alpha, beta)
  for g_ours, g_jax in zip(grad_ours, grad_jax):
    np.testing.assert_allclose(g_ours, g_jax, rtol=1e-5, atol=1e-7)


def test_log1p_prior_transform_reads_log_signals():
  from seq2exp_jax.model.beta_mask import BetaMask  # pylint: disable=import-outside-toplevel
  signals = jnp.asarray(np.random.default_rng(0).gamma(0.5, 100.0, (2, 5, 3)), jnp.float32)
  raw = BetaMask(prior_scale_factor=2.0, beta_min=1.0)
  logged = BetaMask(prior_scale_factor=2.0, beta_min=1.0, prior_transform="log1p")
  a_raw, b_raw, _ = raw.signal_prior(signals)
  a_log, b_log, _ = logged.signal_prior(signals)
  np.testing.assert_allclose(a_raw, (np.asarray(signals) + 1.0) * 2.0 + 1e-8, rtol=1e-6)
  np.testing.assert_allclose(a_log, (np.log1p(np.asarray(signals)) + 1.0) * 2.0 + 1e-8,
                             rtol=1e-6)
  np.testing.assert_array_equal(b_raw, b_log)
  with pytest.raises(ValueError, match="prior_transform 'sqrt'"):
    BetaMask(prior_transform="sqrt")
