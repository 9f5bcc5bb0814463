"""Tests of the FFT long convolution, the Hyena operator and the HyenaDNA backbone."""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.signal

from seq2exp_jax.model.fft_conv import fft_causal_conv
from seq2exp_jax.model.hyena import (ExponentialModulation, HyenaBackbone, HyenaConfig,
                                     HyenaFilter, HyenaOperator, PositionalEmbedding)


def direct_causal_conv(u, k, bias=None):
  """O(L^2) reference: y[b, t, d] = sum_{s<=t} k[s, d] u[b, t-s, d] (+ bias[d] u[b, t, d]).

  u: (B, L, D), k: (L, D), bias: (D,) or None. Returns float32 (B, L, D).
  Builds the (L, L, D) Toeplitz matrix of the filter, so only for short L.
  """
  length = u.shape[1]
  lag = jnp.arange(length)[:, None] - jnp.arange(length)[None, :]  # (t, s) -> t - s
  toeplitz = jnp.where((lag >= 0)[..., None], k[jnp.clip(lag, 0)], 0.0)  # (L, L, D)
  y = jnp.einsum("tsd,bsd->btd", toeplitz, u, precision=jax.lax.Precision.HIGHEST)
  if bias is not None:
    y = y + u * bias
  return y


def _random_conv_inputs(length, width=6, batch=3, seed=0):
  ku, kk, kb = jax.random.split(jax.random.key(seed), 3)
  u = jax.random.normal(ku, (batch, length, width))
  # Decaying filter taps, like the modulated Hyena filters, plus O(1) early taps.
  k = jax.random.normal(kk, (length, width)) * jnp.exp(-jnp.arange(length) / 16.0)[:, None]
  bias = jax.random.normal(kb, (width,))
  return u, k, bias


@pytest.mark.parametrize("length", [1, 2, 7, 64, 129])
@pytest.mark.parametrize("with_bias", [False, True])
def test_fft_conv_equals_direct_conv(length, with_bias):
  u, k, bias = _random_conv_inputs(length, seed=length)
  bias = bias if with_bias else None
  got = fft_causal_conv(u, k, bias)
  want = direct_causal_conv(u, k, bias)
  assert got.shape == u.shape and got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("length", [1, 33, 96])
def test_fft_conv_gradients_equal_direct_conv_gradients(length):
  u, k, bias = _random_conv_inputs(length, seed=100 + length)
  weights = jax.random.normal(jax.random.key(7), u.shape)  # a generic linear read-out

  def loss(conv, u, k, bias):
    return jnp.sum(weights * conv(u, k, bias) ** 2)

  got = jax.grad(lambda *a: loss(fft_causal_conv, *a), argnums=(0, 1, 2))(u, k, bias)
  want = jax.grad(lambda *a: loss(direct_causal_conv, *a), argnums=(0, 1, 2))(u, k, bias)
  for name, g, w in zip(("du", "dk", "dbias"), got, want):
    scale = float(jnp.max(jnp.abs(w)))
    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * scale, err_msg=name)


def test_fft_conv_matches_float64_convolution_at_long_length():
  # Rounding grows with the FFT length; check a full-length odd window against scipy's float64
  # convolution (rounding ~1e-15, an exact reference here), with a slowly decaying filter
  # whose late taps still matter.
  length, width = 200_001, 2
  rng = np.random.default_rng(3)
  u = rng.standard_normal((1, length, width))
  k = rng.standard_normal((length, width)) * np.exp(-np.arange(length) / 50_000.0)[:, None]
  want = scipy.signal.fftconvolve(u[0], k, axes=0)[:length]
  got = np.asarray(fft_causal_conv(jnp.asarray(u, jnp.float32), jnp.asarray(k, jnp.float32)))[0]
  err = np.max(np.abs(got - want)) / np.max(np.abs(want))
  assert err < 1e-5, err


def test_fft_conv_is_causal_and_shift_equivariant():
  # A unit impulse at t0 must return the filter itself, delayed by t0 and nothing before.
  length, t0 = 50, 17
  _, k, _ = _random_conv_inputs(length, width=2, batch=1)
  u = jnp.zeros((1, length, 2)).at[0, t0].set(1.0)
  y = fft_causal_conv(u, k)[0]
  np.testing.assert_allclose(y[:t0], 0.0, atol=1e-6)
  np.testing.assert_allclose(y[t0:], k[:length - t0], atol=1e-5)


def test_fft_conv_runs_in_float32_for_bfloat16_inputs():
  u, k, bias = _random_conv_inputs(64)
  got = fft_causal_conv(u.astype(jnp.bfloat16), k, bias)
  assert got.dtype == jnp.bfloat16
  want = direct_causal_conv(u.astype(jnp.bfloat16).astype(jnp.float32), k, bias)
  np.testing.assert_allclose(got.astype(jnp.float32), want, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("u_shape,k_shape,bias_shape", [
    ((2, 8), (8, 2), None),  # u not (B, L, D)
    ((1, 8, 2), (7, 2), None),  # filter length != L
    ((1, 8, 2), (8, 3), None),  # filter width != D
    ((1, 8, 2), (8, 2), (3,)),  # bias width != D
])
def test_fft_conv_rejects_mismatched_shapes(u_shape, k_shape, bias_shape):
  """Refused by the shape annotations (the tests' runtime checker, a TypeError) and, with
  no checker installed, by the function's own ValueError."""
  bias = None if bias_shape is None else jnp.zeros(bias_shape)
  for conv in (fft_causal_conv, fft_causal_conv.__wrapped__):
    with pytest.raises((ValueError, TypeError), match="fft_causal_conv"):
      conv(jnp.zeros(u_shape), jnp.zeros(k_shape), bias)


def test_positional_embedding_features():
  z, t = PositionalEmbedding(emb_dim=5).apply({}, 11)
  assert z.shape == (11, 5) and t.shape == (11, 1)
  np.testing.assert_allclose(t[:, 0], np.linspace(0, 1, 11), atol=1e-7)
  np.testing.assert_allclose(z[:, 0], t[:, 0])
  # Band 1 has frequency 1: one full turn over the window; band 0 is almost constant.
  w = 2 * np.pi * np.arange(11) / 11
  np.testing.assert_allclose(z[:, 2], np.cos(w), atol=1e-6)
  np.testing.assert_allclose(z[:, 4], -np.sin(w), atol=1e-6)
  np.testing.assert_allclose(z[:, 1], 1.0, atol=1e-6)
  for bad in (4, 1):
    with pytest.raises(ValueError, match="emb_dim must be odd"):
      PositionalEmbedding(emb_dim=bad).apply({}, 11)


def test_exponential_modulation_decay_rates():
  length, width = 101, 8
  t = jnp.linspace(0.0, 1.0, length)[:, None]
  window = ExponentialModulation().apply({}, t, jnp.ones((length, width)))
  assert window.shape == (length, width)
  np.testing.assert_allclose(window[0], 1.0)
  assert bool(jnp.all(jnp.diff(window, axis=0) < 0))  # every channel decays along t
  assert bool(jnp.all(jnp.diff(window[-1]) < 0))  # later channels decay faster
  # The fastest channel is down to target = 1e-2 at t = fast_decay_pct = 0.3; the slowest
  # would reach it only at t = slow_decay_pct = 1.5, so it ends at 1e-2 ** (1 / 1.5).
  np.testing.assert_allclose(window[30, -1], 1e-2, rtol=1e-4)
  np.testing.assert_allclose(window[-1, 0], 1e-2 ** (1 / 1.5), rtol=1e-4)
  shifted = ExponentialModulation(shift=0.5).apply({}, t, jnp.ones((length, width)))
  np.testing.assert_allclose(shifted, window + 0.5, rtol=1e-6)


def test_hyena_filter_fast_channels_vanish_at_the_end():
  length, width = 256, 32
  filt = HyenaFilter(width, filter_order=16)
  params = jax.jit(filt.init, static_argnums=1)(jax.random.key(0), length)
  k, bias = filt.apply(params, length)
  assert k.shape == (length, width) and bias.shape == (width,)
  assert k.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(k)))
  magnitude = jnp.abs(k)
  fast = slice(3 * width // 4, width)
  start = float(magnitude[:8, fast].mean())
  end = float(magnitude[-8:, fast].mean())
  assert start > 0 and end < 1e-3 * start, (start, end)
  # The slowest channels still keep a few percent of their amplitude at the end.
  slow = slice(0, width // 8)
  assert float(magnitude[-8:, slow].mean()) > 1e-3 * float(magnitude[:8, slow].mean())


@pytest.mark.parametrize("order", [2, 3])
def test_hyena_operator_is_causal(order):
  length, width, t0 = 48, 8, 20
  op = HyenaOperator(HyenaConfig(width, order=order, filter_order=16))
  u = jax.random.normal(jax.random.key(1), (2, length, width))
  params = jax.jit(op.init)(jax.random.key(2), u)
  # Large weights make the long filters matter (HyenaDNA's init leaves them ~1e-5).
  rng = np.random.default_rng(order)
  params = jax.tree_util.tree_map(lambda p: p + 0.3 * rng.standard_normal(p.shape, np.float32),
                                  jax.device_get(params))
  apply = jax.jit(op.apply)
  y = apply(params, u)
  assert y.shape == u.shape
  y2 = apply(params, u.at[:, t0].add(1.0))
  change = jnp.max(jnp.abs(y2 - y), axis=(0, 2))  # (L,)
  scale = float(jnp.max(jnp.abs(y)))
  np.testing.assert_array_less(change[:t0], 1e-5 * scale)
  np.testing.assert_array_less(1e-3 * scale, change[t0:])


def test_hyena_operator_rejects_bad_input():
  op = HyenaOperator(HyenaConfig(8))
  with pytest.raises(ValueError, match=r"\(B, L, D=8\)"):
    op.init(jax.random.key(0), jnp.zeros((1, 16, 4)))
  with pytest.raises(ValueError, match=r"HyenaConfig.order=1: expected an integer >= 2"):
    HyenaConfig(8, order=1)
  with pytest.raises(ValueError, match="HyenaConfig.emb_dim=4"):
    HyenaConfig(8, emb_dim=4)
  with pytest.raises(ValueError, match="HyenaBackbone: n_layer must be >= 1"):
    HyenaBackbone(HyenaConfig(8), n_layer=0)


def _backbone_and_input(remat=False, dtype=jnp.float32, length=40, width=16):
  model = HyenaBackbone(HyenaConfig(width, filter_order=16, remat=remat, dtype=dtype),
                        n_layer=2)
  x = jax.random.normal(jax.random.key(3), (2, length, width))
  return model, x


def test_backbone_forward_gradient_and_jit():
  model, x = _backbone_and_input()
  params = jax.jit(model.init)(jax.random.key(4), x)
  y = jax.jit(model.apply)(params, x)
  assert y.shape == x.shape and y.dtype == jnp.float32
  assert bool(jnp.all(jnp.isfinite(y)))

  def loss(params):
    return jnp.mean(model.apply(params, x)[:, -1] ** 2)

  grads = jax.device_get(jax.jit(jax.grad(loss))(params))  # numpy: no per-leaf compiles
  leaves = jax.tree_util.tree_leaves_with_path(grads)
  assert all(np.all(np.isfinite(g)) for _, g in leaves)
  # Every parameter, filters and short convolutions included, reaches the last position.
  dead = [jax.tree_util.keystr(p) for p, g in leaves if not np.any(g)]
  assert not dead, dead


def test_backbone_is_causal():
  model, x = _backbone_and_input()
  params = jax.jit(model.init)(jax.random.key(5), x)
  # At HyenaDNA's init the long filters are ~1e-5 and their reach drowns in rounding; move
  # every parameter by a random N(0, 0.3) step, as training would, to make it visible.
  rng = np.random.default_rng(50)
  params = jax.tree_util.tree_map(lambda p: p + 0.3 * rng.standard_normal(p.shape, np.float32),
                                  jax.device_get(params))
  t0 = 25
  # A random direction: adding the same constant to every channel would be erased by the
  # LayerNorms and test nothing.
  bump = jax.random.normal(jax.random.key(6), x.shape[-1:])
  apply = jax.jit(model.apply)
  change = jnp.max(jnp.abs(apply(params, x.at[:, t0].add(bump)) - apply(params, x)), axis=(0, 2))
  np.testing.assert_array_less(change[:t0], 1e-5)
  np.testing.assert_array_less(1e-3, change[t0:])


def test_backbone_remat_matches_plain():
  model, x = _backbone_and_input()
  remat_model, _ = _backbone_and_input(remat=True)
  params = jax.jit(model.init)(jax.random.key(6), x)
  assert (jax.tree_util.tree_structure(params)
          == jax.tree_util.tree_structure(jax.eval_shape(remat_model.init, jax.random.key(6), x)))
  # The flag must really wrap the blocks in jax.checkpoint (XLA:CPU's memory report does not
  # show what remat saves, so check the program itself).
  remat_primitive = re.compile(r"\b(remat\w*|checkpoint)\[")  # jax.checkpoint's jaxpr name
  assert remat_primitive.search(str(jax.make_jaxpr(remat_model.apply)(params, x)))
  assert not remat_primitive.search(str(jax.make_jaxpr(model.apply)(params, x)))
  loss = lambda m: (lambda p: jnp.sum(jnp.sin(m.apply(p, x))))
  g_plain = jax.jit(jax.grad(loss(model)))(params)
  g_remat = jax.jit(jax.grad(loss(remat_model)))(params)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                         g_plain, g_remat)


def test_backbone_bfloat16_compute():
  model, x = _backbone_and_input(dtype=jnp.bfloat16)
  params = jax.jit(model.init)(jax.random.key(7), x)
  assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params))
  y = jax.jit(model.apply)(params, x)
  assert y.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(y.astype(jnp.float32))))
  y32 = jax.jit(HyenaBackbone(HyenaConfig(16, filter_order=16), n_layer=2).apply)(params, x)
  np.testing.assert_allclose(y.astype(jnp.float32), y32, atol=0.15)


def test_backbone_full_length_shapes_without_compute():
  batch, length, width, n_layer = 8, 200_000, 128, 4
  model = HyenaBackbone(HyenaConfig(width, remat=True, dtype=jnp.bfloat16), n_layer)
  x = jax.ShapeDtypeStruct((batch, length, width), jnp.float32)
  params = jax.eval_shape(model.init, jax.random.key(0), x)
  n_params = sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(params))
  # Per layer: in_proj 3D^2+3D, conv 3*3D+3D, filter 5*64+64 + 2*(64*64+64) + 64*D + 64 + D,
  # out_proj D^2+D, fc1/fc2 8D^2+5D, 2 norms 4D; plus the final norm 2D.
  per_layer = (3 * width**2 + 3 * width + 12 * width + 5 * 64 + 64 + 2 * (64 * 64 + 64)
               + 64 * width + 64 + width + width**2 + width + 8 * width**2 + 5 * width
               + 4 * width)
  assert n_params == n_layer * per_layer + 2 * width
  y = jax.eval_shape(model.apply, params, x)
  assert y.shape == (batch, length, width) and y.dtype == jnp.bfloat16


def _compiled_gradient_temp_bytes(length, batch=1, width=32):
  model = HyenaBackbone(HyenaConfig(width, filter_order=16), n_layer=1)
  x = jax.ShapeDtypeStruct((batch, length, width), jnp.float32)
  params = jax.eval_shape(model.init, jax.random.key(0), x)
  loss = lambda p, x: jnp.mean(model.apply(p, x) ** 2)
  compiled = jax.jit(jax.grad(loss)).lower(params, x).compile()  # compiled, never run
  return compiled.memory_analysis().temp_size_in_bytes


def test_training_memory_is_linear_in_length():
  # XLA's own buffer plan for a training gradient at 20 kb and at the full 200 kb: the
  # scratch memory per position must not grow with L (an (L, L) intermediate, or a
  # direct convolution, would multiply it by 10) and stays a few dozen (D,) rows.
  width = 32
  per_position = {length: _compiled_gradient_temp_bytes(length, width=width) / length
                  for length in (20_000, 200_000)}
  assert per_position[200_000] < 1.05 * per_position[20_000], per_position
  assert per_position[200_000] < 100 * width * 4, per_position


def test_training_reduces_loss_on_a_delayed_copy_task():
  # Target: each position must output the input 5 positions back (beyond the short conv's
  # reach of 2), which only the long convolution can provide.
  delay, length, width = 5, 32, 8
  model = HyenaBackbone(HyenaConfig(width, filter_order=16), n_layer=1)
  x = jax.random.normal(jax.random.key(8), (4, length, width))
  target = jnp.pad(x, ((0, 0), (delay, 0), (0, 0)))[:, :length]
  params = jax.jit(model.init)(jax.random.key(9), x)
  opt = optax.adam(1e-2)
  state = opt.init(params)

  def loss_fn(params):
    return jnp.mean((model.apply(params, x) - target) ** 2)

  @jax.jit
  def step(params, state):
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss

  losses = []
  for _ in range(60):
    params, state, loss = step(params, state)
    losses.append(float(loss))
  assert all(math.isfinite(v) for v in losses)
  # Zero output scores mean(target^2); the inputs the short convolutions reach (t-2..t) are
  # independent of x[t-5], so beating it clearly means the long filters learned the delay.
  assert losses[-1] < 0.8 * float(jnp.mean(target ** 2)), losses[::10]
  assert losses[-1] < 0.5 * losses[0], losses[::10]
