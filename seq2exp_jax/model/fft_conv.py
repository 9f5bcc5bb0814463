"""Causal long convolution through the FFT, in O(L log L) time and O(B L D) memory.

The Hyena operator convolves every channel with a filter as long as the window
(L = 200,000 here), so the direct sum, O(L^2) per channel, is out of the question.
Zero-padding both signals to length 2L turns the circular convolution computed by the
FFT into the linear one: with n >= 2L - 1 no output wraps around, and keeping the first
L outputs gives exactly

    y[b, t, d] = sum_{s=0..t} k[s, d] u[b, t - s, d]  (+ bias[d] u[b, t, d])

i.e. a causal convolution (output t sees inputs <= t only). Same formula as HyenaDNA's
`fftconv`, with the time axis second (B, L, D) instead of last.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float


def fft_causal_conv(u: Float[Array, "B L D"], k: Float[Array, "L D"],
                    bias: Float[Array, "D"] | None = None) -> Float[Array, "B L D"]:
  """Per-channel causal convolution of `u` with the filter `k`, via real FFTs of length 2L.

  The FFT always runs in float32, whatever the dtype of `u` (bfloat16 FFTs lose the
  small, late filter taps); the result is cast back to the dtype of `u`.

  Args:
    u: (B, L, D) input.
    k: (L, D) one filter per channel; k[s, d] weighs the input s positions back.
    bias: optional (D,) weight of the instantaneous skip term bias[d] * u[t].
  Returns:
    (B, L, D) in the dtype of `u`.
  Raises:
    ValueError: if the shapes do not match as above.
  """
  if u.ndim != 3:
    raise ValueError(f"fft_causal_conv: u must be (B, L, D), got shape {u.shape}")
  _, length, width = u.shape
  if k.shape != (length, width):
    raise ValueError(f"fft_causal_conv: k must be (L, D) = {(length, width)} to match u "
                     f"{u.shape}, got shape {k.shape}")
  if bias is not None and bias.shape != (width,):
    raise ValueError(f"fft_causal_conv: bias must be (D,) = ({width},), got shape {bias.shape}")

  n = 2 * length
  u32 = u.astype(jnp.float32)
  u_f = jnp.fft.rfft(u32, n=n, axis=1)  # (B, L + 1, D) complex64
  k_f = jnp.fft.rfft(k.astype(jnp.float32), n=n, axis=0)  # (L + 1, D)
  y = jnp.fft.irfft(u_f * k_f[None], n=n, axis=1)[:, :length]  # (B, L, D)
  if bias is not None:
    y = y + u32 * bias.astype(jnp.float32)
  return y.astype(u.dtype)
