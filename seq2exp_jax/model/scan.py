"""The selective scan of Mamba v1, with memory linear in the sequence length.

    h_t = exp(delta_t A) * h_{t-1} + delta_t B_t x_t        (state h: (B, E, N))
    y_t = sum_n C_t[n] h_t[:, :, n]

`B_t`, `C_t` are shared by all E channels (one value per state index); `delta_t` is per
channel. One interface, `selective_scan(..., method=...)`, with these implementations
(`SCAN_METHODS`):

* ``"reference"``: one `lax.scan` step per position over the whole window. Simple and the
  oracle in tests, but its backward pass keeps the state of every step, an (L, B, E, N)
  array, so it is only for short windows.
* ``"chunked"``: positions are cut into chunks of `chunk_size`; a loop carries the state
  from chunk to chunk and keeps only the state entering each chunk. The backward pass is
  written by hand (`jax.custom_vjp`): it walks the chunks in reverse, recomputes one chunk's
  states from its entry state and runs the adjoint, itself a linear recurrence run
  backwards. It holds O((L / T + T) B E N) floats instead of O(L B E N); `exp(delta A)`
  never exists for more than one chunk. The step sizes (bias + softplus), the `D x` skip and
  the SiLU gate are applied per chunk inside it too, as mamba-ssm's fused kernel does, so a
  block's backward pass keeps only the scan's inputs. Each chunk runs one of two kernels
  (`scan_kernels.CHUNK_KERNELS`): "fused", one position per step with all of its work in the
  step, or "associative", whole-chunk arrays and a log-depth recurrence;
  ``"chunked_fused"`` and ``"chunked_associative"`` name one, ``"chunked"`` takes the
  backend's (`default_inner()`: fused on CPU, associative elsewhere).
* ``"pallas"``: the fused Pallas kernels of `scan_pallas.py`, one launch per scan with the
  state on chip (Triton, GPU); on a CPU backend the same kernels run in interpret mode.
* ``"auto"`` (the default): `default_method()`, "pallas" on GPU, "chunked" elsewhere (CPU,
  and TPU, where the Triton kernels do not lower).

Every entry of `SCAN_METHODS` takes the same arguments (`selective_scan` passes them all, as
given: each method computes in float32 and reads lower-precision inputs as it needs), so a
new kernel only has to register itself there under a new name; callers (`SSMConfig.
scan_method`, the benchmarks) choose by `method` and nothing else changes.

On 2 CPU cores the fused kernel's backward is ~1.8x faster than whole-chunk einsums, and a
sequential recurrence ~7x faster than `lax.associative_scan` at L=65,536; see
`benchmarks/scan.py` for the methods side by side, `benchmarks/gpu.py` on a GPU.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, Float

from seq2exp_jax.model.scan_kernels import CHUNK_KERNELS, step_position
from seq2exp_jax.model.scan_pallas import (DEFAULT_CHUNK_SIZE, epilogue, epilogue_backward,
                                           pallas_scan, step_size_derivative, step_sizes)


def _to_time_major(a):
  return jnp.moveaxis(a, 1, 0)


def reference_scan(x: Float[Array, "B L E"], delta: Float[Array, "B L E"],
                   A: Float[Array, "*b E N"], Bm: Float[Array, "B L N"],
                   Cm: Float[Array, "B L N"]) -> Float[Array, "B L E"]:
  """Step-by-step scan over the whole window (the test oracle).

  Args:
    x: (B, L, E) input. delta: (B, L, E) positive step sizes (after softplus).
    A: (E, N) or (B, E, N) negative state matrix diagonal. Bm, Cm: (B, L, N).
  Returns:
    y: (B, L, E), float32.
  """
  batch, _, inner = x.shape

  def step(h, inputs):
    h, y, _ = step_position(h, inputs, A)
    return h, y

  h0 = jnp.zeros((batch, inner, A.shape[-1]), jnp.float32)
  _, y = jax.lax.scan(step, h0, tuple(_to_time_major(a) for a in (delta, x, Bm, Cm)))
  return _to_time_major(y)


def _read_chunk(arrays, start, size: int):
  """Time-major slices (size, B, C) at positions [start, start + size) of (B, L, C) arrays.

  Chunks are read in place with dynamic slices rather than by reshaping the whole window
  into chunk-major order, which would copy every (B, L, E) input once more.
  """
  return tuple(jnp.moveaxis(jax.lax.dynamic_slice_in_dim(a, start, size, axis=1), 1, 0)
               for a in arrays)


def _write_chunk(buffers, values, start):
  """Write time-major chunks (T, B, C) into (B, L, C) buffers at `start` (in place)."""
  return tuple(jax.lax.dynamic_update_slice_in_dim(buf, jnp.moveaxis(v, 0, 1), start, axis=1)
               for buf, v in zip(buffers, values))


def _chunked_forward(x, dt, A, Bm, Cm, D, z, delta_bias, chunk, inner, softplus, gated):
  """Returns the output (B, L, E) and the state entering every chunk (n_chunks, B, E, N).

  Full chunks run in a loop; a shorter last chunk (L not a multiple of `chunk`) runs once
  after it, so nothing is padded. Each chunk's step sizes and gate are formed inside the
  loop, so no (B, L, E) intermediate of the scan outlives its chunk.
  """
  batch, length, width = x.shape
  n_full, tail = divmod(length, chunk)

  def run_chunk(i, start, size, carry):
    h, out, entries = carry
    dt_c, x_c, b_c, c_c = _read_chunk((dt, x, Bm, Cm), start, size)
    z_c = _read_chunk((z,), start, size)[0] if gated else None
    delta_c = step_sizes(dt_c, delta_bias, softplus)
    h_last, y = CHUNK_KERNELS[inner][0](h, delta_c, x_c, b_c, c_c, A)
    (out,) = _write_chunk((out,), (epilogue(y, x_c, D, z_c, gated),), start)
    return h_last, out, entries.at[i].set(h)

  carry = (jnp.zeros((batch, width, A.shape[-1]), jnp.float32), jnp.zeros_like(x),
           jnp.zeros((n_full + (tail > 0), batch, width, A.shape[-1]), jnp.float32))
  carry = jax.lax.fori_loop(0, n_full, lambda i, c: run_chunk(i, i * chunk, chunk, c), carry)
  if tail:
    carry = run_chunk(n_full, n_full * chunk, tail, carry)
  return carry[1], carry[2]


@functools.partial(jax.custom_vjp, nondiff_argnums=(8, 9, 10, 11))
def _chunked_scan(x, dt, A, Bm, Cm, D, z, delta_bias, chunk, inner, softplus, gated):
  return _chunked_forward(x, dt, A, Bm, Cm, D, z, delta_bias, chunk, inner, softplus,
                          gated)[0]


def _chunked_scan_fwd(x, dt, A, Bm, Cm, D, z, delta_bias, chunk, inner, softplus, gated):
  out, entry_states = _chunked_forward(x, dt, A, Bm, Cm, D, z, delta_bias, chunk, inner,
                                       softplus, gated)
  return out, (x, dt, A, Bm, Cm, D, z, delta_bias, entry_states)


def _chunked_scan_bwd(chunk, inner, softplus, gated, residuals, d_out):
  """Walk the chunks from last to first, passing dLoss/dh back across chunk borders."""
  x, dt, A, Bm, Cm, D, z, delta_bias, entry_states = residuals
  n_full, tail = divmod(x.shape[1], chunk)

  def run_chunk(i, start, size, carry):
    g_last, (dA, dD, dbias), grads = carry
    dt_c, x_c, b_c, c_c, d_out_c = _read_chunk((dt, x, Bm, Cm, d_out), start, size)
    z_c = _read_chunk((z,), start, size)[0] if gated else None
    delta = step_sizes(dt_c, delta_bias, softplus)

    def cotangent(y):
      dy, dx_skip, dz, dD_terms = epilogue_backward(y, x_c, D, z_c, gated, d_out_c)
      return dy, (dx_skip, dz, dD_terms)

    dh0, ddelta, dx, dBm, dCm, dA_chunk, (dx_skip, dz, dD_terms) = CHUNK_KERNELS[inner][1](
        entry_states[i], delta, x_c, b_c, c_c, A, g_last, cotangent)
    ddt = ddelta * step_size_derivative(dt_c, delta_bias, softplus)
    sums = (dA + dA_chunk, dD + jnp.sum(dD_terms, axis=(0, 1)), dbias + jnp.sum(ddt, (0, 1)))
    chunk_grads = (dx + dx_skip, ddt, dBm, dCm) + ((dz,) if gated else ())
    return dh0, sums, _write_chunk(grads, chunk_grads, start)

  carry = (jnp.zeros_like(entry_states[0]),
           (jnp.zeros_like(A), jnp.zeros_like(D), jnp.zeros_like(delta_bias)),
           tuple(jnp.zeros_like(v) for v in (x, dt, Bm, Cm) + ((z,) if gated else ())))
  if tail:
    carry = run_chunk(n_full, n_full * chunk, tail, carry)

  def body(j, c):
    i = n_full - 1 - j
    return run_chunk(i, i * chunk, chunk, c)

  _, (dA, dD, dbias), grads = jax.lax.fori_loop(0, n_full, body, carry)
  dx, ddt, dBm, dCm = grads[:4]
  dz = grads[4] if gated else jnp.zeros_like(z)
  return dx, ddt, dA, dBm, dCm, dD, dz, dbias


_chunked_scan.defvjp(_chunked_scan_fwd, _chunked_scan_bwd)


def default_inner() -> str:
  """The chunk kernel for this backend: fused steps on CPU, associative elsewhere."""
  return "fused" if jax.default_backend() == "cpu" else "associative"


def _as_float32(*arrays):
  """Each array (or None) in float32: what the chunked and reference scans compute in."""
  return tuple(None if a is None else jnp.asarray(a, jnp.float32) for a in arrays)


def chunked_scan(x: Float[Array, "B L E"], delta: Float[Array, "B L E"],
                 A: Float[Array, "*b E N"], Bm: Float[Array, "B L N"],
                 Cm: Float[Array, "B L N"], D: Float[ArrayLike, "E"] | None = None,
                 z: Float[Array, "B L E"] | None = None,
                 delta_bias: Float[ArrayLike, "E"] | None = None, delta_softplus: bool = False,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, *, inner: str | None = None
                 ) -> Float[Array, "B L E"]:
  """Scan in chunks with a hand-written backward pass; memory linear in L.

  The forward keeps only the state entering each chunk; the backward walks the chunks in
  reverse, recomputes each chunk's states from its entry state and runs the adjoint
  recurrence, so no (L, E, N) array ever exists. The step sizes (bias + softplus), the skip
  term and the gate are computed per chunk too (what mamba-ssm's fused kernel does), so the
  backward pass needs only the inputs, not the scan's intermediates.

  Args:
    x: (B, L, E) input. delta: (B, L, E) step sizes, or their raw projection when
      `delta_bias` / `delta_softplus` are given.
    A: (E, N), or (B, E, N) for one A per batch row. Bm, Cm: (B, L, N).
    D: (E,) skip weight or None. z: (B, L, E) gate or None. delta_bias: (E,) or None.
    delta_softplus: apply softplus to delta + delta_bias.
    chunk_size: positions per chunk (T). L need not be a multiple of it: a shorter last
      chunk is run on its own.
    inner: the chunk kernel, a key of `CHUNK_KERNELS`: "fused" (one position per step with
      everything for it fused; fastest on CPU) or "associative" (whole-chunk arrays and a
      log-depth recurrence, for GPU/TPU); None picks `default_inner()`. `SCAN_METHODS`
      names each ("chunked_fused", "chunked_associative").
  Returns:
    (B, L, E), float32: y, (y + D x), or (y + D x) * SiLU(z).
  """
  inner = inner or default_inner()
  if inner not in CHUNK_KERNELS:
    raise ValueError(f"unknown chunk kernel {inner!r}: expected one of {sorted(CHUNK_KERNELS)}")
  x, delta, A, Bm, Cm, D, z, delta_bias = _as_float32(x, delta, A, Bm, Cm, D, z, delta_bias)
  chunk = max(1, min(chunk_size, x.shape[1]))
  width = x.shape[-1]
  # One A per batch row inside the kernels, so independent scans with different A (e.g. the
  # two directions of a BiMamba) can run as one batch; broadcasting sums the gradient back
  # for a shared A.
  A = jnp.broadcast_to(A, (x.shape[0],) + A.shape[-2:])
  D = jnp.zeros((width,), jnp.float32) if D is None else D
  delta_bias = jnp.zeros((width,), jnp.float32) if delta_bias is None else delta_bias
  gated = z is not None
  z = z if gated else x  # a stand-in that is never read without a gate
  return _chunked_scan(x, delta, A, Bm, Cm, D, z, delta_bias, chunk, inner,
                       bool(delta_softplus), gated)


def reference_selective_scan(x: Float[Array, "B L E"], delta: Float[Array, "B L E"],
                             A: Float[Array, "*b E N"], Bm: Float[Array, "B L N"],
                             Cm: Float[Array, "B L N"], D: Float[ArrayLike, "E"] | None = None,
                             z: Float[Array, "B L E"] | None = None,
                             delta_bias: Float[ArrayLike, "E"] | None = None,
                             delta_softplus: bool = False,
                             chunk_size: int = DEFAULT_CHUNK_SIZE) -> Float[Array, "B L E"]:
  """The same maths as `chunked_scan`, composed from the step-by-step reference
  (`chunk_size` is accepted for the common interface and unused)."""
  del chunk_size
  x, delta, A, Bm, Cm, D, z, delta_bias = _as_float32(x, delta, A, Bm, Cm, D, z, delta_bias)
  zeros = jnp.zeros(x.shape[-1:], jnp.float32)
  if delta_bias is not None or delta_softplus:
    delta = step_sizes(delta, zeros if delta_bias is None else delta_bias, delta_softplus)
  y = reference_scan(x, delta, A, Bm, Cm)
  if D is None and z is None:
    return y
  return epilogue(y, x, zeros if D is None else D, z, z is not None)


def default_method() -> str:
  """The scan for this backend: the fused Pallas kernels on GPU; the chunked scan on CPU
  (fused chunk kernel) and TPU (associative chunk kernel: the Triton kernels do not lower
  there)."""
  return "pallas" if jax.default_backend() == "gpu" else "chunked"


def auto_scan(*args, **kwargs) -> Float[Array, "B L E"]:
  """`SCAN_METHODS[default_method()]`, with the same arguments."""
  return SCAN_METHODS[default_method()](*args, **kwargs)


SCAN_METHODS: dict[str, Callable] = {
    "auto": auto_scan,
    "reference": reference_selective_scan,
    "chunked": chunked_scan,
    "chunked_fused": functools.partial(chunked_scan, inner="fused"),
    "chunked_associative": functools.partial(chunked_scan, inner="associative"),
    "pallas": pallas_scan,
}


def selective_scan(x: Float[Array, "B L E"], delta: Float[Array, "B L E"],
                   A: Float[Array, "*b E N"], Bm: Float[Array, "B L N"],
                   Cm: Float[Array, "B L N"], *, D: Float[ArrayLike, "E"] | None = None,
                   z: Float[Array, "B L E"] | None = None,
                   delta_bias: Float[ArrayLike, "E"] | None = None, delta_softplus: bool = False,
                   method: str = "auto", chunk_size: int = DEFAULT_CHUNK_SIZE
                   ) -> Float[Array, "B L E"]:
  """The selective scan, mamba-ssm's `selective_scan_fn` interface, computed in float32.

      delta' = softplus(delta + delta_bias) (if delta_softplus), else delta (+ delta_bias)
      out = (SSM(delta', A, B, C)(x) + D * x) * SiLU(z)      (D and z optional)

  Args:
    x: (B, L, E) input after the causal conv and SiLU.
    delta: (B, L, E) step sizes, or their raw projection (see delta_bias, delta_softplus).
    A: (E, N) state matrix diagonal, `-exp(A_log)`, or (B, E, N): one per batch row.
    Bm, Cm: (B, L, N) input and output projections, shared by all E channels.
    D: (E,) skip weight. z: (B, L, E) gate. delta_bias: (E,).
    method: a key of `SCAN_METHODS`; every method gets every argument above, as given
      (bf16 x, delta, B, C, z are allowed; each method computes in float32).
    chunk_size: chunk length T (the chunked and Pallas methods; others may ignore it).
  Returns:
    (B, L, E) float32.
  """
  if method not in SCAN_METHODS:
    raise ValueError(f"unknown scan method {method!r}: expected one of {sorted(SCAN_METHODS)}")
  return SCAN_METHODS[method](x, delta, A, Bm, Cm, D, z, delta_bias,
                              delta_softplus=delta_softplus, chunk_size=chunk_size)
