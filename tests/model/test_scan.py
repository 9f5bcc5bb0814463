"""The chunked selective scan equals the step-by-step reference and has linear memory."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2exp_jax.model import scan


def _inputs(batch, length, inner, state, seed=0):
  k = jax.random.split(jax.random.PRNGKey(seed), 5)
  x = jax.random.normal(k[0], (batch, length, inner))
  delta = jax.nn.softplus(jax.random.normal(k[1], (batch, length, inner)) - 1.0)
  A = -jnp.exp(0.5 * jax.random.normal(k[2], (inner, state)))
  Bm = jax.random.normal(k[3], (batch, length, state))
  Cm = jax.random.normal(k[4], (batch, length, state))
  return x, delta, A, Bm, Cm


def _scan_fn(method):
  """selective_scan by method name (a chunk kernel is chosen by name too)."""
  return lambda *a, **k: scan.selective_scan(*a, method=method, **k)


def _value_and_grads(method, args, **kw):
  fn = _scan_fn(method)

  def loss(*a):
    y = fn(*a, **kw)
    return jnp.sum(jnp.sin(y) * y), y
  (_, y), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3, 4), has_aux=True))(*args)
  return y, grads


@pytest.mark.parametrize("length,chunk,inner", [
    (1, 16, "fused"), (37, 8, "fused"), (64, 16, "fused"),
    (37, 8, "associative"), (50, 64, "fused"), (129, 1, "fused")])
def test_chunked_equals_reference(length, chunk, inner):
  args = _inputs(2, length, 6, 4, seed=length)
  y_ref, g_ref = _value_and_grads("reference", args)
  y, g = _value_and_grads(f"chunked_{inner}", args, chunk_size=chunk)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  for name, a, b in zip(["x", "delta", "A", "B", "C"], g, g_ref):
    scale = float(jnp.max(jnp.abs(b))) + 1e-12
    assert float(jnp.max(jnp.abs(a - b))) <= 1e-5 * scale + 1e-7, name


@pytest.mark.parametrize("inner", ["fused", "associative"])
def test_fused_step_sizes_skip_and_gate_equal_the_composition(inner):
  """softplus(dt + bias), + D x and * SiLU(z) inside the chunked scan (and their gradients,
  D, z and the bias included) equal the plain composition around the reference scan."""
  x, dt, A, Bm, Cm = _inputs(2, 45, 6, 4, seed=3)
  k = jax.random.split(jax.random.PRNGKey(9), 3)
  dt = 3.0 * jax.random.normal(k[0], dt.shape)  # raw projection, some above 20 after bias
  D = jax.random.normal(k[1], (6,))
  z = jax.random.normal(k[2], x.shape)
  bias = jnp.linspace(-2.0, 19.0, 6)

  def run(method, **kw):
    fn = _scan_fn(method)

    def loss(x, dt, A, Bm, Cm, D, z, bias):
      y = fn(x, dt, A, Bm, Cm, D=D, z=z, delta_bias=bias, delta_softplus=True, **kw)
      return jnp.sum(jnp.sin(y) * y), y
    return jax.jit(jax.value_and_grad(loss, argnums=tuple(range(8)), has_aux=True))(
        x, dt, A, Bm, Cm, D, z, bias)

  (_, y_ref), g_ref = run("reference")
  (_, y), g = run(f"chunked_{inner}", chunk_size=16)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  for name, a, b in zip(["x", "dt", "A", "B", "C", "D", "z", "bias"], g, g_ref):
    scale = float(jnp.max(jnp.abs(b))) + 1e-12
    assert float(jnp.max(jnp.abs(a - b))) <= 1e-5 * scale + 1e-7, name


def test_one_A_per_row_equals_separate_scans():
  x, delta, A, Bm, Cm = _inputs(2, 40, 6, 4)
  A_rows = jnp.stack([A, 2.0 * A])
  together = scan.selective_scan(x, delta, A_rows, Bm, Cm, chunk_size=16)
  for row, a in enumerate((A, 2.0 * A)):
    alone = scan.selective_scan(x[row:row + 1], delta[row:row + 1], a, Bm[row:row + 1],
                                Cm[row:row + 1], method="reference")
    np.testing.assert_allclose(together[row:row + 1], alone, rtol=1e-5, atol=1e-6)


def test_reference_matches_explicit_loop():
  x, delta, A, Bm, Cm = (np.asarray(a, np.float64) for a in _inputs(1, 9, 3, 2))
  h = np.zeros((3, 2))
  ys = []
  for t in range(9):
    h = np.exp(delta[0, t][:, None] * A) * h + (delta[0, t] * x[0, t])[:, None] * Bm[0, t][None]
    ys.append(h @ Cm[0, t])
  got = scan.reference_scan(*(jnp.asarray(a, jnp.float32) for a in (x, delta, A, Bm, Cm)))
  np.testing.assert_allclose(got[0], np.stack(ys), rtol=1e-5, atol=1e-6)


def test_a_registered_method_gets_every_argument(monkeypatch):
  """A new kernel only registers in SCAN_METHODS: selective_scan hands every method the same
  arguments, with no special case for any name."""
  seen = {}

  def fake(x, delta, A, Bm, Cm, D, z, delta_bias, *, delta_softplus, chunk_size):
    seen.update(D=D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus,
                chunk_size=chunk_size)
    return x

  monkeypatch.setitem(scan.SCAN_METHODS, "fake", fake)
  x, delta, A, Bm, Cm = _inputs(1, 8, 2, 2)
  out = scan.selective_scan(x, delta, A, Bm, Cm, D=jnp.ones(2), z=x, delta_bias=jnp.zeros(2),
                            delta_softplus=True, method="fake", chunk_size=5)
  np.testing.assert_array_equal(out, x)
  assert seen["delta_softplus"] is True and seen["chunk_size"] == 5
  assert all(seen[k] is not None for k in ("D", "z", "delta_bias"))


def test_unknown_method_is_refused():
  with pytest.raises(ValueError, match="unknown scan method 'no_such_scan'"):
    scan.selective_scan(*_inputs(1, 4, 2, 2), method="no_such_scan")


def test_auto_is_the_backends_method(monkeypatch):
  """"auto" runs `default_method()`'s entry with the same arguments: chunked on CPU/TPU,
  the Pallas kernels on GPU."""
  calls = []
  for name in ("chunked", "pallas"):
    monkeypatch.setitem(scan.SCAN_METHODS, name,
                        lambda x, *a, name=name, **k: calls.append(name) or x)
  args = _inputs(1, 4, 2, 2)
  for backend, expected in (("cpu", "chunked"), ("tpu", "chunked"), ("gpu", "pallas")):
    monkeypatch.setattr(scan.jax, "default_backend", lambda backend=backend: backend)
    scan.selective_scan(*args)
    assert calls[-1] == expected, backend


def _temp_bytes(method, length, inner, state, chunk=scan.DEFAULT_CHUNK_SIZE):
  """XLA's temp bytes for forward + backward: y and all input gradients from (inputs, dy).

  The output y, the cotangent dy and the gradients are arguments and results, not temps, so
  this measures what the scan itself holds on to.
  """
  args = jax.eval_shape(lambda: _inputs(1, length, inner, state))

  def forward_backward(args, dy):
    y, vjp = jax.vjp(lambda *a: scan.selective_scan(*a, method=method, chunk_size=chunk),
                     *args)
    return y, vjp(dy)

  dy = jax.ShapeDtypeStruct((1, length, inner), jnp.float32)
  compiled = jax.jit(forward_backward).lower(args, dy).compile()
  return compiled.memory_analysis().temp_size_in_bytes


def test_memory_is_linear_in_length():
  small, big = _temp_bytes("chunked", 4096, 64, 16), _temp_bytes("chunked", 16384, 64, 16)
  assert big <= 4.5 * small, (small, big)


def test_memory_far_below_full_state_tensor():
  length, inner, state = 65_536, 256, 16
  temp = _temp_bytes("chunked", length, inner, state)
  full = length * inner * state * 4
  assert temp < full / 8, (temp, full)
  # The reference keeps every step's state: this is the tensor the chunked scan avoids.
  assert _temp_bytes("reference", 4096, inner, state) > 4096 * inner * state * 4
