"""The fused Pallas scan (interpret mode on CPU) equals the reference scan, values and
gradients: L=1, L not a multiple of the chunk or the sub-chunk, several channel blocks,
per-row A, with and without the fused step sizes, skip and gate, bf16 inputs; and it runs
by name through `selective_scan` and a Mamba block's config."""

from __future__ import annotations

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seq2exp_jax.model import scan
from seq2exp_jax.model.mamba import BiMamba
from seq2exp_jax.model.ssm_config import SSMConfig

NAMES = ("x", "dt", "A", "B", "C", "D", "z", "bias")


def _inputs(batch, length, width, state, per_row_a, seed):
  k = jax.random.split(jax.random.PRNGKey(seed), 8)
  a_shape = (batch, width, state) if per_row_a else (width, state)
  return {"x": jax.random.normal(k[0], (batch, length, width)),
          "dt": 3.0 * jax.random.normal(k[1], (batch, length, width)),  # raw, some > 20
          "A": -jnp.exp(0.5 * jax.random.normal(k[2], a_shape)),
          "B": jax.random.normal(k[3], (batch, length, state)),
          "C": jax.random.normal(k[4], (batch, length, state)),
          "D": jax.random.normal(k[5], (width,)),
          "z": jax.random.normal(k[6], (batch, length, width)),
          "bias": jnp.linspace(-2.0, 19.0, width)}


def _run(scan_fn, inputs, fused, softplus, **kw):
  """y and the gradients of sum(sin(y) y) w.r.t. every input given to the scan."""
  used = NAMES[:5] + tuple(fused)

  def loss(*values):
    a = dict(zip(used, values))
    if not softplus:  # positive step sizes without the softplus
      a["dt"] = jax.nn.softplus(a["dt"].astype(jnp.float32) - 1.0).astype(a["dt"].dtype)
    y = scan_fn(a["x"], a["dt"], a["A"], a["B"], a["C"], D=a.get("D"), z=a.get("z"),
                delta_bias=a.get("bias"), delta_softplus=softplus, **kw)
    return jnp.sum(jnp.sin(y) * y), y
  grad = jax.value_and_grad(loss, argnums=tuple(range(len(used))), has_aux=True)
  (_, y), grads = jax.jit(grad)(*(inputs[n] for n in used))
  return y, dict(zip(used, grads))


def _max_error(got, want, names):
  """(max |y - y_ref| / max |y_ref|, {name: the same for each gradient})."""
  rel = lambda a, b: float(np.max(np.abs(np.float32(a) - np.float32(b)))  # noqa: E731
                           / (np.max(np.abs(np.float32(b))) + 1e-12))
  assert set(got[1]) == set(want[1]) == set(names)
  for name in names:
    assert got[1][name].shape == want[1][name].shape, name
  return rel(got[0], want[0]), {n: rel(got[1][n], want[1][n]) for n in names}


REFERENCE = functools.partial(scan.selective_scan, method="reference")

# (batch, L, E, N, per-row A, fused inputs, softplus, chunk, sub-chunk, channel block)
CASES = {
    "L=1": (2, 1, 8, 4, True, ("D", "z", "bias"), True, 16, 4, 4),
    "L=37, not a multiple": (2, 37, 8, 4, False, ("D", "z", "bias"), True, 16, 4, 4),
    "L=32, a multiple, plain": (1, 32, 4, 4, True, (), False, 8, 4, 4),
    "chunk 10, sub 4, E=6": (2, 23, 6, 2, True, ("D", "bias"), True, 10, 4, 8),
}


@pytest.mark.parametrize("case", list(CASES))
def test_values_and_gradients_equal_reference(case):
  """Small sub-chunks and channel blocks, so the kernels cross sub-chunk, chunk and
  channel-block borders (dB, dC summed over blocks) at these small shapes."""
  batch, length, width, state, per_row_a, fused, softplus, chunk, sub, block = CASES[case]
  inputs = _inputs(batch, length, width, state, per_row_a, seed=length)
  pallas = functools.partial(scan.pallas_scan, sub_chunk=sub, block_e=block)
  y_err, g_err = _max_error(_run(pallas, inputs, fused, softplus, chunk_size=chunk),
                            _run(REFERENCE, inputs, fused, softplus), NAMES[:5] + fused)
  assert y_err <= 1e-5 and max(g_err.values()) <= 1e-5, (y_err, g_err)


def test_the_method_name_runs_the_kernels_with_their_defaults():
  """selective_scan(method="pallas"): on this CPU backend the kernels run in interpret mode
  by themselves; GPU-default blocks (32 channels, 16-position sub-chunks) on E=8, L=45."""
  assert jax.default_backend() == "cpu"
  inputs = _inputs(2, 45, 8, 4, True, seed=5)
  pallas = functools.partial(scan.selective_scan, method="pallas")
  y_err, g_err = _max_error(_run(pallas, inputs, NAMES[5:], True, chunk_size=32),
                            _run(REFERENCE, inputs, NAMES[5:], True), NAMES)
  assert y_err <= 1e-5 and max(g_err.values()) <= 1e-5, (y_err, g_err)


def test_bf16_inputs_within_tolerance():
  """x, dt, B, C, z in bfloat16: read as such, computed in float32. Against the float32
  reference on the same (bf16-valued) inputs y agrees to 1e-5 and each gradient to 2^-7 of
  its largest entry (the gradients of bf16 inputs come back rounded to bf16); against the
  float32 reference on the unrounded inputs y agrees to 3e-2 of its largest entry."""
  exact = _inputs(2, 29, 8, 4, True, seed=2)
  low = {n: v.astype(jnp.bfloat16) if n in ("x", "dt", "B", "C", "z") else v
         for n, v in exact.items()}
  rounded = {n: v.astype(jnp.float32) for n, v in low.items()}
  pallas = functools.partial(scan.pallas_scan, sub_chunk=4, block_e=4)
  got = _run(pallas, low, NAMES[5:], True, chunk_size=8)
  assert got[0].dtype == jnp.float32
  assert all(got[1][n].dtype == low[n].dtype for n in NAMES)
  y_err, g_err = _max_error(got, _run(REFERENCE, rounded, NAMES[5:], True), NAMES)
  assert y_err <= 1e-5 and max(g_err.values()) <= 2.0 ** -7, (y_err, g_err)
  y_err, _ = _max_error(got, _run(REFERENCE, exact, NAMES[5:], True), NAMES)
  assert y_err <= 3e-2, y_err


def test_a_mamba_block_runs_the_kernels_from_its_config():
  """BiMamba (both directions as one batch with one A per row) with
  SSMConfig(scan_method="pallas") equals the reference scan's block, output and every
  parameter's gradient."""
  u = jax.random.normal(jax.random.PRNGKey(3), (2, 19, 8))
  blocks = {m: BiMamba(SSMConfig(d_model=8, d_state=4, scan_method=m, chunk_size=8))
            for m in ("pallas", "reference")}
  params = blocks["reference"].init(jax.random.PRNGKey(0), u)["params"]

  def run(block):
    def loss(p):
      y = block.apply({"params": p}, u)
      return jnp.sum(jnp.sin(y) * y), y
    return jax.jit(jax.value_and_grad(loss, has_aux=True))(params)

  (_, y), grads = run(blocks["pallas"])
  (_, y_ref), grads_ref = run(blocks["reference"])
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  for path, g in flax.traverse_util.flatten_dict(grads).items():
    g_ref = flax.traverse_util.flatten_dict(grads_ref)[path]
    assert float(jnp.max(jnp.abs(g - g_ref))) <= 1e-5 * float(jnp.max(jnp.abs(g_ref))), path


@pytest.mark.parametrize("dtype,gated", [(jnp.float32, True), (jnp.bfloat16, False)])
def test_the_kernels_lower_for_the_gpu(dtype, gated):
  """Forward and backward lower to Triton on this CPU machine (the GPU lowering is Python:
  a construct Triton does not take, e.g. `%` on a loop index, fails here, not first on a
  lent GPU); L 300 is not a multiple of the chunk, E 64 is two channel blocks."""
  from seq2exp_jax.model import scan_pallas  # noqa: PLC0415

  batch, length, width, state = 2, 300, 64, 16
  shapes = {"x": (batch, length, width), "dt": (batch, length, width),
            "A": (batch, width, state), "B": (batch, length, state),
            "C": (batch, length, state), "D": (width,), "z": (batch, length, width),
            "bias": (width,)}
  low = {"x", "dt", "B", "C", "z"}
  args = [jax.ShapeDtypeStruct(shapes[n], dtype if n in low else jnp.float32) for n in NAMES]

  def loss(x, dt, A, Bm, Cm, D, z, bias):
    y = scan_pallas.pallas_scan(x, dt, A, Bm, Cm, D, z if gated else None, bias, True,
                                interpret=False)
    return jnp.sum(y)

  grad = jax.grad(loss, argnums=tuple(range(len(NAMES))))
  text = jax.jit(grad).trace(*args).lower(lowering_platforms=("cuda",)).as_text()
  assert text.count("xla.gpu.triton") == 2  # one launch forward, one backward
