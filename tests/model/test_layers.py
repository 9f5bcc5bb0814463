"""The shared layers: the depthwise causal convolution of Mamba and Hyena, PyTorch's softplus."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2exp_jax.model.layers import CausalDepthwiseConv, torch_softplus


def test_causal_depthwise_conv_equals_grouped_lax_conv():
  # Reference: PyTorch's Conv1d(C, C, K, groups=C, padding=K-1)(x)[..., :L], i.e. a grouped
  # cross-correlation with K-1 zeros on the left only.
  size, channels = 3, 5
  x = jax.random.normal(jax.random.key(11), (2, 9, channels))
  conv = CausalDepthwiseConv(size)
  params = conv.init(jax.random.key(12), x)
  kernel, bias = params["params"]["kernel"], params["params"]["bias"]
  assert kernel.shape == (size, channels) and bias.shape == (channels,)
  bound = 1 / math.sqrt(size)  # PyTorch's default init range
  assert float(jnp.max(jnp.abs(kernel))) <= bound and float(jnp.max(jnp.abs(bias))) <= bound
  want = jax.lax.conv_general_dilated(
      x, kernel[:, None, :], window_strides=(1,), padding=[(size - 1, 0)],
      dimension_numbers=("NWC", "WIO", "NWC"), feature_group_count=channels) + bias
  np.testing.assert_allclose(conv.apply(params, x), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("size", [3, 4])
def test_causal_depthwise_conv_is_causal(size):
  x = jax.random.normal(jax.random.key(1), (1, 12, 4))
  conv = CausalDepthwiseConv(size)
  params = conv.init(jax.random.key(2), x)
  y = conv.apply(params, x)
  y2 = conv.apply(params, x.at[:, 6].add(1.0))
  np.testing.assert_array_equal(y[:, :6], y2[:, :6])
  assert not np.allclose(y[:, 6:6 + size], y2[:, 6:6 + size])
  np.testing.assert_array_equal(y[:, 6 + size:], y2[:, 6 + size:])  # reach K - 1 back only


def test_torch_softplus_is_identity_above_20():
  x = jnp.array([-30.0, 0.0, 19.9, 20.5, 80.0])
  y = torch_softplus(x)
  np.testing.assert_allclose(y[:3], jax.nn.softplus(x[:3]), rtol=1e-6)
  np.testing.assert_array_equal(y[3:], x[3:])
