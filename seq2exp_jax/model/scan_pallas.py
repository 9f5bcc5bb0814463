"""The fused selective scan as Pallas kernels: one launch per scan, the state kept on chip.

The chunked scan (`scan.py`) loops over chunks outside its kernels; with the "associative"
chunk kernel each chunk writes (T, B, E, N) arrays to memory and reads them log2(T) times.
These kernels do what mamba-ssm's CUDA `selective_scan_fn` does instead: a grid over
(batch rows, blocks of `block_e` channels), each program holding its (block_e, N) float32
state in registers and walking the positions in order, so the scan reads only its inputs
(x, the raw step sizes, B, C, z; bf16 or float32) and writes only its outputs.

* Forward: per position, delta = softplus(dt + bias), h = exp(delta A) h + delta x B,
  y = C . h, out = (y + D x) * SiLU(z); the state entering every chunk of `chunk_size`
  positions is written out for the backward (float32, (B, L / T, E, N)).
* Backward: the chunks in reverse. Each chunk's states are recomputed from its saved entry
  state in two levels held in registers: the entry states of its sub-chunks of `sub_chunk`
  positions first, then, sub-chunk by sub-chunk in reverse, that sub-chunk's states, which
  the adjoint recurrence g_t = C_t dy_t + a_{t+1} g_{t+1} reads backwards. dA, dD and the
  bias gradient accumulate per program; dB and dC (shared by all E channels) are written
  per channel block and summed outside.

The kernels are written for the Triton lowering (GPU): loads and stores are per-position
slices of power-of-two size, loops are `fori_loop`s, register buffers have power-of-two
lengths. On a CPU backend they run in Pallas interpret mode by themselves, so one method
name works everywhere (slowly on CPU: use "chunked" there). They do not lower to TPU
(Mosaic needs a kernel of its own); "auto" keeps the chunked scan there.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.typing import ArrayLike
from jaxtyping import Array, Float

from seq2exp_jax.model.layers import torch_softplus

DEFAULT_CHUNK_SIZE = 128
DEFAULT_BLOCK_E = 32  # channels per program: (32, 16) float32 states, 128 threads
DEFAULT_SUB_CHUNK = 16  # positions whose states the backward holds in registers at once
F32 = jnp.float32


def step_sizes(dt: Float[Array, "*s E"], delta_bias: Float[ArrayLike, "E"],
               softplus: bool) -> Float[Array, "*s E"]:
  """Step sizes from the raw projection: softplus(dt + bias), or dt + bias."""
  v = dt + delta_bias
  return torch_softplus(v) if softplus else v


def step_size_derivative(dt: Float[Array, "*s E"], delta_bias: Float[ArrayLike, "E"],
                         softplus: bool) -> Float[Array, "*s E"]:
  """d step_sizes / d dt."""
  v = dt + delta_bias
  return jnp.where(v > 20.0, 1.0, jax.nn.sigmoid(v)) if softplus else jnp.ones_like(v)


def epilogue(y: Float[Array, "*s E"], x: Float[Array, "*s E"], D: Float[ArrayLike, "E"],
             z: Float[Array, "*s E"] | None, gated: bool) -> Float[Array, "*s E"]:
  """(y + D x) * SiLU(z), or y + D x without a gate."""
  out = y + D * x
  return out * jax.nn.silu(z) if gated else out


def epilogue_backward(y: Float[Array, "*s E"], x: Float[Array, "*s E"],
                      D: Float[ArrayLike, "E"], z: Float[Array, "*s E"] | None, gated: bool,
                      d_out: Float[Array, "*s E"]) -> tuple:
  """d_out -> (dy, dx from the skip term, dz or None, per-position dD terms)."""
  dz = None
  if gated:
    sig = jax.nn.sigmoid(z)
    dz = d_out * (y + D * x) * sig * (1.0 + z * (1.0 - sig))
    d_out = d_out * z * sig
  return d_out, d_out * D, dz, d_out * x


class _Settings(NamedTuple):
  """The static settings of one scan (hashable: a nondiff argument of the custom_vjp)."""
  chunk: int  # T, positions per saved entry state
  sub: int  # S, positions per register sub-chunk (T is a multiple of S)
  block_e: int  # channels per program
  softplus: bool
  gated: bool
  interpret: bool


def _pow2(n: int) -> int:
  """The smallest power of two >= n (register buffers must have power-of-two sizes)."""
  return 1 << max(0, n - 1).bit_length()


def _at(refs, t, bias, softplus: bool, gated: bool):
  """Position t's inputs in float32: x, dt, delta (block_e,); b, c (N,); z or None."""
  x_ref, dt_ref, b_ref, c_ref, z_ref = refs
  x, dt = x_ref[t].astype(F32), dt_ref[t].astype(F32)
  z = z_ref[t].astype(F32) if gated else None
  return x, dt, step_sizes(dt, bias, softplus), b_ref[t].astype(F32), c_ref[t].astype(F32), z


def _advance(h, delta, x, b, A):
  """One step of the recurrence: h (block_e, N) -> exp(delta A) h + delta x B."""
  return jnp.exp(delta[:, None] * A) * h + (delta * x)[:, None] * b[None, :]


def _pick(buf, i):
  """buf[i] for a traced i (a register buffer cannot be indexed dynamically)."""
  hit = jax.lax.broadcasted_iota(jnp.int32, buf.shape, 0) == i
  return jnp.sum(jnp.where(hit, buf, 0.0), axis=0)


def _put(buf, i, value):
  """buf with buf[i] = value, for a traced i."""
  return jnp.where(jax.lax.broadcasted_iota(jnp.int32, buf.shape, 0) == i, value[None], buf)


def _forward_kernel(*refs, length: int, s: _Settings):
  x_ref, dt_ref, a_ref, b_ref, c_ref, d_ref, bias_ref = refs[:7]
  z_ref = refs[7] if s.gated else None
  out_ref, hs_ref = refs[-2:]
  A, D, bias = a_ref[...].astype(F32), d_ref[...], bias_ref[...]
  inputs = (x_ref, dt_ref, b_ref, c_ref, z_ref)

  def body(t, h):
    @pl.when(jax.lax.rem(t, s.chunk) == 0)  # `%` adds a sign fix Triton cannot lower
    def _():
      hs_ref[t // s.chunk] = h

    x, _, delta, b, c, z = _at(inputs, t, bias, s.softplus, s.gated)
    h = _advance(h, delta, x, b, A)
    out_ref[t] = epilogue(jnp.sum(h * c[None, :], axis=1), x, D, z, s.gated)
    return h

  jax.lax.fori_loop(0, length, body, jnp.zeros(A.shape, F32))


def _backward_kernel(*refs, length: int, s: _Settings):
  x_ref, dt_ref, a_ref, b_ref, c_ref, d_ref, bias_ref = refs[:7]
  z_ref = refs[7] if s.gated else None
  hs_ref, dout_ref = refs[7 + s.gated:9 + s.gated]
  dx_ref, ddt_ref, db_ref, dc_ref, da_ref, dd_ref, dbias_ref = refs[9 + s.gated:16 + s.gated]
  dz_ref = refs[16 + s.gated] if s.gated else None
  A, D, bias = a_ref[...].astype(F32), d_ref[...], bias_ref[...]
  inputs = (x_ref, dt_ref, b_ref, c_ref, z_ref)
  n_chunks = pl.cdiv(length, s.chunk)
  sub_entries = jnp.zeros((_pow2(s.chunk // s.sub),) + A.shape, F32)
  sub_states = jnp.zeros((_pow2(s.sub),) + A.shape, F32)

  def step(h, t):  # the state after position t from the state before it
    x, _, delta, b, _, _ = _at(inputs, t, bias, s.softplus, s.gated)
    return _advance(h, delta, x, b, A)

  def run(h, start, size):  # the state after positions [start, start + size)
    return jax.lax.fori_loop(0, size, lambda i, h: step(h, start + i), h)

  def adjoint_step(t, h_prev, h, carry):
    g_next, dA, dD, dbias = carry
    x, dt, delta, b, c, z = _at(inputs, t, bias, s.softplus, s.gated)
    a = jnp.exp(delta[:, None] * A)
    y = jnp.sum(h * c[None, :], axis=1)
    dy, dx_skip, dz, dD_terms = epilogue_backward(y, x, D, z, s.gated,
                                                  dout_ref[t].astype(F32))
    g = g_next + dy[:, None] * c[None, :]
    g_decay = g * h_prev * a  # dLoss / d(delta A)
    g_b = jnp.sum(g * b[None, :], axis=1)
    ddt = (g_b * x + jnp.sum(g_decay * A, axis=1)) * step_size_derivative(dt, bias,
                                                                          s.softplus)
    dx_ref[t] = (g_b * delta + dx_skip).astype(dx_ref.dtype)
    ddt_ref[t] = ddt.astype(ddt_ref.dtype)
    db_ref[t] = jnp.sum(g * (delta * x)[:, None], axis=0)
    dc_ref[t] = jnp.sum(h * dy[:, None], axis=0)
    if s.gated:
      dz_ref[t] = dz.astype(dz_ref.dtype)
    return a * g, dA + g_decay * delta[:, None], dD + dD_terms, dbias + ddt

  def sub_chunk_backward(start, size, n_sub, entries, kk, carry):
    k = n_sub - 1 - kk
    first, h_entry = start + k * s.sub, _pick(entries, k)
    n = jnp.minimum(s.sub, size - k * s.sub)

    def record(i, hb):
      h, buf = hb
      h = step(h, first + i)
      return h, _put(buf, i, h)

    _, states = jax.lax.fori_loop(0, n, record, (h_entry, sub_states))

    def back(ii, carry):
      i = n - 1 - ii
      h_prev = jnp.where(i == 0, h_entry, _pick(states, i - 1))
      return adjoint_step(first + i, h_prev, _pick(states, i), carry)

    return jax.lax.fori_loop(0, n, back, carry)

  def chunk_backward(j, carry):
    c = n_chunks - 1 - j
    start = c * s.chunk
    size = jnp.minimum(s.chunk, length - start)
    n_sub = (size + s.sub - 1) // s.sub

    def entry(k, hb):
      h, buf = hb
      buf = _put(buf, k, h)
      return run(h, start + k * s.sub, jnp.minimum(s.sub, size - k * s.sub)), buf

    _, entries = jax.lax.fori_loop(0, n_sub, entry, (hs_ref[c], sub_entries))
    return jax.lax.fori_loop(
        0, n_sub, functools.partial(sub_chunk_backward, start, size, n_sub, entries), carry)

  zeros_e = jnp.zeros(D.shape, F32)
  _, dA, dD, dbias = jax.lax.fori_loop(0, n_chunks, chunk_backward,
                                       (jnp.zeros(A.shape, F32), jnp.zeros(A.shape, F32),
                                        zeros_e, zeros_e))
  da_ref[...], dd_ref[...], dbias_ref[...] = dA, dD, dbias


def _call(kernel, s: _Settings, args, in_specs, out_shapes, out_specs):
  """One pallas_call over the grid (batch rows, channel blocks)."""
  batch, _, width = args[0].shape
  params = None
  if not s.interpret:
    from jax.experimental.pallas import triton as pl_triton  # noqa: PLC0415
    params = pl_triton.CompilerParams(num_warps=max(1, s.block_e // 8), num_stages=2)
  return pl.pallas_call(kernel, out_shape=out_shapes, grid=(batch, width // s.block_e),
                        in_specs=in_specs, out_specs=out_specs, interpret=s.interpret,
                        compiler_params=params)(*args)


def _input_specs(length: int, state: int, s: _Settings) -> tuple[list, pl.BlockSpec]:
  """BlockSpecs of (x, dt, A, B, C, D, bias[, z]) and the one of any (B, L, E) array."""
  seq_e = pl.BlockSpec((None, length, s.block_e), lambda b, e: (b, 0, e))
  seq_n = pl.BlockSpec((None, length, state), lambda b, e: (b, 0, 0))
  rows_a = pl.BlockSpec((None, s.block_e, state), lambda b, e: (b, e, 0))
  vec = pl.BlockSpec((s.block_e,), lambda b, e: (e,))
  return [seq_e, seq_e, rows_a, seq_n, seq_n, vec, vec] + [seq_e] * s.gated, seq_e


def _inputs(x, dt, A, Bm, Cm, D, z, bias, gated: bool) -> tuple:
  return (x, dt, A, Bm, Cm, D, bias) + ((z,) if gated else ())


def _forward(x, dt, A, Bm, Cm, D, z, bias, s: _Settings):
  """(out (B, L, E) float32, entry states (B, n_chunks, E, N) float32)."""
  batch, length, width = x.shape
  state, n_chunks = A.shape[-1], pl.cdiv(length, s.chunk)
  in_specs, seq_e = _input_specs(length, state, s)
  entries = pl.BlockSpec((None, n_chunks, s.block_e, state), lambda b, e: (b, 0, e, 0))
  shapes = [jax.ShapeDtypeStruct(x.shape, F32),
            jax.ShapeDtypeStruct((batch, n_chunks, width, state), F32)]
  return _call(functools.partial(_forward_kernel, length=length, s=s), s,
               _inputs(x, dt, A, Bm, Cm, D, z, bias, s.gated), in_specs, shapes,
               [seq_e, entries])


@functools.partial(jax.custom_vjp, nondiff_argnums=(8,))
def _fused_scan(x, dt, A, Bm, Cm, D, z, bias, s: _Settings):
  return _forward(x, dt, A, Bm, Cm, D, z, bias, s)[0]


def _fused_scan_fwd(x, dt, A, Bm, Cm, D, z, bias, s: _Settings):
  out, entry_states = _forward(x, dt, A, Bm, Cm, D, z, bias, s)
  return out, (x, dt, A, Bm, Cm, D, z, bias, entry_states)


def _fused_scan_bwd(s: _Settings, residuals, d_out):
  x, dt, A, Bm, Cm, D, z, bias, entry_states = residuals
  batch, length, width = x.shape
  state, n_blocks = A.shape[-1], width // s.block_e
  in_specs, seq_e = _input_specs(length, state, s)
  entries = pl.BlockSpec((None, entry_states.shape[1], s.block_e, state),
                         lambda b, e: (b, 0, e, 0))
  shared = pl.BlockSpec((None, None, length, state), lambda b, e: (b, e, 0, 0))
  per_row = pl.BlockSpec((None, s.block_e), lambda b, e: (b, e))
  shapes = [jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct(dt.shape, dt.dtype)]
  shapes += [jax.ShapeDtypeStruct((batch, n_blocks, length, state), F32)] * 2
  shapes += [jax.ShapeDtypeStruct(A.shape, F32)]
  shapes += [jax.ShapeDtypeStruct((batch, width), F32)] * 2
  shapes += [jax.ShapeDtypeStruct(z.shape, z.dtype)] * s.gated
  out_specs = [seq_e, seq_e, shared, shared, in_specs[2], per_row, per_row]
  grads = _call(functools.partial(_backward_kernel, length=length, s=s), s,
                _inputs(x, dt, A, Bm, Cm, D, z, bias, s.gated) + (entry_states, d_out),
                in_specs + [entries, seq_e], shapes, out_specs + [seq_e] * s.gated)
  dx, ddt, dBm, dCm, dA, dD, dbias = grads[:7]
  dz = grads[7] if s.gated else jnp.zeros_like(z)
  return (dx, ddt, dA, dBm.sum(1).astype(Bm.dtype), dCm.sum(1).astype(Cm.dtype), dD.sum(0),
          dz, dbias.sum(0))


_fused_scan.defvjp(_fused_scan_fwd, _fused_scan_bwd)


def _channel_block(width: int, block_e: int) -> int:
  """The largest power of two <= block_e that divides E (Triton blocks are powers of 2)."""
  block = 1
  while block * 2 <= min(block_e, width) and width % (block * 2) == 0:
    block *= 2
  return block


def pallas_scan(x: Float[Array, "B L E"], delta: Float[Array, "B L E"],
                A: Float[Array, "*b E N"], Bm: Float[Array, "B L N"],
                Cm: Float[Array, "B L N"], D: Float[ArrayLike, "E"] | None = None,
                z: Float[Array, "B L E"] | None = None,
                delta_bias: Float[ArrayLike, "E"] | None = None, delta_softplus: bool = False,
                chunk_size: int = DEFAULT_CHUNK_SIZE, *, block_e: int = DEFAULT_BLOCK_E,
                sub_chunk: int = DEFAULT_SUB_CHUNK, interpret: bool | None = None
                ) -> Float[Array, "B L E"]:
  """The selective scan in two Pallas kernels (forward, backward), the state in float32.

  The arguments and the result are `scan.chunked_scan`'s; x, delta, B, C and z may be
  bfloat16 (read as such, computed in float32; their gradients come back in their dtype).

  Args:
    chunk_size: T, positions between the entry states the forward saves for the backward
      (memory B (L / T) E N float32). L need not be a multiple of it, nor of sub_chunk.
    block_e: channels per program (rounded down to a power of two dividing E).
    sub_chunk: S, positions whose states the backward holds in registers at once.
    interpret: Pallas interpret mode; None: on when the default backend is the CPU.
  Returns:
    (B, L, E), float32: y, (y + D x), or (y + D x) * SiLU(z).
  """
  length, width = x.shape[1:]
  chunk = max(1, min(chunk_size, length))
  sub = max(1, min(sub_chunk, chunk))
  s = _Settings(chunk=-(-chunk // sub) * sub, sub=sub, block_e=_channel_block(width, block_e),
                softplus=bool(delta_softplus), gated=z is not None,
                interpret=jax.default_backend() == "cpu" if interpret is None else interpret)
  A = jnp.broadcast_to(jnp.asarray(A, F32), (x.shape[0],) + A.shape[-2:])
  D = jnp.zeros((width,), F32) if D is None else jnp.asarray(D, F32)
  delta_bias = jnp.zeros((width,), F32) if delta_bias is None else jnp.asarray(delta_bias, F32)
  return _fused_scan(x, delta, A, Bm, Cm, D, x if z is None else z, delta_bias, s)
