"""The chunk kernels of the chunked selective scan: one chunk's states forward, and its
gradients backward from the saved entry state (see `scan.py`).

Two kernels behind one interface (`CHUNK_KERNELS`): "fused" runs one position per step
with all of that position's work in the step (fastest on CPU), "associative" works on
whole-chunk (T, B, E, N) arrays with a log-depth recurrence (for GPU/TPU). Arrays inside a
chunk are time-major: delta, x (T, B, E); Bm, Cm (T, B, N); states (T, B, E, N).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def step_position(h, inputs, A):
  """One position for every batch row: h (B, E, N) -> (new h, y_t (B, E), decay a_t).

  inputs: delta_t (B, E), x_t (B, E), B_t (B, N), C_t (B, N); A: (E, N) or (B, E, N);
  a_t = exp(delta_t A) is (B, E, N).
  """
  delta_t, x_t, b_t, c_t = inputs
  a = jnp.exp(delta_t[..., None] * A)
  h = a * h + (delta_t * x_t)[..., None] * b_t[:, None, :]
  return h, jnp.einsum("ben,bn->be", h, c_t), a


def _associative_recurrence(a, b, h0, *, reverse: bool = False):
  """All states of h_t = a_t * h_{t-1} + b_t along axis 0 (T), in log depth.

  a, b: (T, B, E, N); h0: (B, E, N), the state before the first step taken (with `reverse`
  time runs from T-1 down to 0). Returns (T, B, E, N).
  """
  first = -1 if reverse else 0
  b = b.at[first].add(a[first] * h0)

  def compose(left, right):  # two affine maps h -> a h + b, `left` applied first
    return right[0] * left[0], right[0] * left[1] + right[1]

  return jax.lax.associative_scan(compose, (a, b), reverse=reverse)[1]


def _fused_chunk_forward(h0, delta, x, Bm, Cm, A, keep_states: bool = False):
  """One chunk, one position per step, everything for a position fused in the step.

  h0: (B, E, N); delta, x: (T, B, E); Bm, Cm: (T, B, N); A: (B, E, N). Returns the last state
  and y (T, B, E), plus every state and decay exp(delta A) (T, B, E, N) with `keep_states`
  (the backward reads the decays rather than recomputing the exponentials: ~8% faster).
  """
  def step(h, inputs):
    h, y, a = step_position(h, inputs, A)
    return h, ((y, h, a) if keep_states else y)

  return jax.lax.scan(step, h0, (delta, x, Bm, Cm))


def _fused_chunk_backward(h0, delta, x, Bm, Cm, A, g_last, cotangent_fn):
  """Gradients of one chunk, recomputing its states from the saved entry state h0.

  `cotangent_fn(y)` gives dLoss/dy (T, B, E) and anything else the caller derives from the
  recomputed outputs y (the gate's gradients), returned last as `aux`.

  With g_t = dLoss/dh_t the adjoint runs backwards, g_t = C_t dy_t + a_{t+1} g_{t+1}; the
  carry is c = a_{t+1} g_{t+1}, and g_last is what the following chunk passes back. Each
  step reads one stored state and forms every gradient of its position, so the (T, E, N)
  arrays are touched twice (written, read) instead of once per reduction.

  Returns (dh0 (B, E, N), ddelta (T, B, E), dx (T, B, E), dBm (T, B, N), dCm (T, B, N),
  dA (B, E, N), aux).
  """
  _, (y, states, decays) = _fused_chunk_forward(h0, delta, x, Bm, Cm, A, keep_states=True)
  dy, aux = cotangent_fn(y)
  prev_states = jnp.concatenate([h0[None], states[:-1]], axis=0)

  def step(carry, inputs):
    c, dA = carry
    delta_t, x_t, b_t, c_t, dy_t, h_prev, h, a = inputs
    g = c + dy_t[..., None] * c_t[:, None, :]
    g_decay = g * h_prev * a  # dLoss / d(delta A)
    g_b = jnp.einsum("ben,bn->be", g, b_t)
    grads = (g_b * x_t + jnp.einsum("ben,ben->be", g_decay, A),  # ddelta
             g_b * delta_t,  # dx
             jnp.einsum("ben,be->bn", g, delta_t * x_t),  # dBm
             jnp.einsum("ben,be->bn", h, dy_t))  # dCm
    return (a * g, dA + jnp.einsum("ben,be->ben", g_decay, delta_t)), grads

  (dh0, dA), grads = jax.lax.scan(
      step, (g_last, jnp.zeros_like(A)), (delta, x, Bm, Cm, dy, prev_states, states, decays),
      reverse=True)
  return (dh0,) + grads + (dA, aux)


def _associative_states(h0, delta, x, Bm, A):
  """Decays exp(delta A) and all states of one chunk, (T, B, E, N) each."""
  a = jnp.exp(delta[..., None] * A)
  return a, _associative_recurrence(a, (delta * x)[..., None] * Bm[:, :, None, :], h0)


def _associative_chunk_forward(h0, delta, x, Bm, Cm, A):
  """As `_fused_chunk_forward`, with whole-chunk arrays and a log-depth recurrence."""
  _, h = _associative_states(h0, delta, x, Bm, A)
  return h[-1], jnp.einsum("tben,tbn->tbe", h, Cm)


def _associative_chunk_backward(h0, delta, x, Bm, Cm, A, g_last, cotangent_fn):
  """As `_fused_chunk_backward`, with every reduction done over the whole chunk at once."""
  a, h = _associative_states(h0, delta, x, Bm, A)
  dy, aux = cotangent_fn(jnp.einsum("tben,tbn->tbe", h, Cm))
  a_next = jnp.concatenate([a[1:], jnp.ones_like(a[:1])], axis=0)
  g = _associative_recurrence(a_next, dy[..., None] * Cm[:, :, None, :], g_last,
                              reverse=True)
  h_prev = jnp.concatenate([h0[None], h[:-1]], axis=0)
  g_decay = g * h_prev * a
  g_b = jnp.einsum("tben,tbn->tbe", g, Bm)
  ddelta = g_b * x + jnp.einsum("tben,ben->tbe", g_decay, A)
  return (a[0] * g[0], ddelta, g_b * delta, jnp.einsum("tben,tbe->tbn", g, delta * x),
          jnp.einsum("tben,tbe->tbn", h, dy), jnp.einsum("tben,tbe->ben", g_decay, delta), aux)


# inner -> (chunk forward, chunk backward)
CHUNK_KERNELS: dict[str, tuple[Callable, Callable]] = {
    "fused": (_fused_chunk_forward, _fused_chunk_backward),
    "associative": (_associative_chunk_forward, _associative_chunk_backward),
}
