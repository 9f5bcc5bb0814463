"""Mamba mixers and the Caduceus backbone: properties beyond the golden vectors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2exp_jax.model.caduceus import Caduceus
from seq2exp_jax.model.init import dt_bias_init
from seq2exp_jax.model.mamba import BiMamba, Mamba
from seq2exp_jax.model.ssm_config import SSMConfig

KEY = jax.random.PRNGKey(0)


def test_bimamba_reversed_input_with_swapped_directions_reverses_output():
  u = jax.random.normal(KEY, (2, 40, 16))
  model = BiMamba(SSMConfig(d_model=16))
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
  model = Mamba(SSMConfig(d_model=16, bidirectional=False))
  params = model.init(KEY, u)
  out = model.apply(params, u)
  out2 = model.apply(params, u.at[:, 20].add(1.0))
  np.testing.assert_array_equal(out[:, :20], out2[:, :20])
  assert not np.allclose(out[:, 20:], out2[:, 20:])


def test_initialisation_follows_mamba_ssm():
  model = Caduceus(SSMConfig(d_model=32, init_n_layer=64), n_layer=2)
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


def test_every_ssm_setting_reaches_the_mixers():
  """dt_rank, dt_min/dt_max and d_conv set once in the SSMConfig shape every layer."""
  config = SSMConfig(d_model=16, d_state=4, d_conv=3, dt_rank=3, dt_min=0.05, dt_max=0.06)
  params = Caduceus(config, n_layer=2).init(KEY, jnp.zeros((1, 8, 16)))["params"]
  ssm = params["layers"]["mixer"]["mamba_rev"]
  assert ssm["dt_proj"]["kernel"].shape == (2, 3, 32)  # (layers, R, E)
  assert ssm["x_proj"]["kernel"].shape == (2, 32, 3 + 2 * 4)
  assert ssm["conv1d"]["kernel"].shape == (2, 3, 32)
  dt = np.asarray(jax.nn.softplus(ssm["dt_proj"]["bias"]))
  assert dt.min() >= 0.05 * 0.999 and dt.max() <= 0.06 * 1.001


@pytest.mark.parametrize("field,value", [("d_model", 0), ("d_state", -1), ("dt_min", 0.5),
                                         ("scan_method", "no_such_scan"), ("dt_rank", 0)])
def test_bad_ssm_settings_are_refused_by_name(field, value):
  with pytest.raises(ValueError, match=f"SSMConfig.{field}"):
    SSMConfig(**{field: value})


def test_dt_bias_is_inverse_softplus_of_log_uniform_dt():
  b = dt_bias_init()(KEY, (20_000,))
  log_dt = np.log(np.asarray(jax.nn.softplus(b)))
  # log-uniform on [log 1e-3, log 0.1]: mean at the midpoint, flat quartiles.
  assert abs(log_dt.mean() - (math.log(1e-3) + math.log(0.1)) / 2) < 0.05


def test_remat_gives_identical_gradients():
  x = jax.random.normal(KEY, (1, 32, 16))
  plain = Caduceus(SSMConfig(d_model=16), n_layer=2)
  remat = Caduceus(SSMConfig(d_model=16, remat=True), n_layer=2)
  params = plain.init(KEY, x)
  g1 = jax.grad(lambda p: jnp.sum(plain.apply(p, x) ** 2))(params)
  g2 = jax.grad(lambda p: jnp.sum(remat.apply(p, x) ** 2))(params)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_packed_rows_do_not_read_the_padding_after_them(bidirectional):
  """With `lengths`, row b's first lengths[b] outputs are the same whatever follows them
  (any amount of padding, any values): the reverse direction starts at the last real row."""
  lengths = jnp.asarray([5, 23])
  u = jax.random.normal(KEY, (2, 23, 16))
  model = Caduceus(SSMConfig(d_model=16, bidirectional=bidirectional, chunk_size=8), n_layer=2)
  params = model.init(KEY, u)
  out = model.apply(params, u, lengths)
  longer = jnp.concatenate([u, jax.random.normal(jax.random.PRNGKey(1), (2, 17, 16))], 1)
  out_longer = model.apply(params, longer, lengths)
  for b, n in enumerate(lengths.tolist()):
    np.testing.assert_allclose(out_longer[b, :n], out[b, :n], rtol=1e-5, atol=1e-6)
    # The row alone, unpadded, is the same sequence.
    np.testing.assert_allclose(model.apply(params, u[b:b + 1, :n])[0], out[b, :n],
                               rtol=1e-5, atol=1e-6)
  # Without lengths the bidirectional backbone reads the padding (so the test can fail).
  if bidirectional:
    assert not np.allclose(model.apply(params, longer)[0, :5], out[0, :5], atol=1e-4)
