"""Attribution tracks of a trained model: gradient x input and in-silico saturation
mutagenesis (ISM) of the predicted expression, in genome coordinates.

Every function takes the model as `apply_fn(params, batch) -> ModelOutput` (evaluation
mode), so this layer never imports the training code.

* Gradient x input (`make_gradient_x_input`): one backward pass of the batch's summed
  prediction (rows are independent, so each row's gradient is its own gene's) gives
  d prediction / d dna (B, L, 4) and d prediction / d signals (B, L, S). The DNA
  attribution of a base is the gradient at the base present, sum over the 4 channels of
  gradient x one-hot (0 at N); a signal's is gradient x value per track. The sum of a row's
  attributions over positions is the directional derivative of the prediction along its
  input, d/dt f((1 + t) x) at t = 0. Memory is that of one training backward: linear in L
  (nothing (L, L) is formed).
* ISM (`make_mutation_fn`, `mutation_effects`, `saturation_mutagenesis`): each mutation
  sets one base of one gene's window; mutants are built on device from the one stored row,
  `chunk` at a time, and `delta` = prediction(mutant) - prediction(reference), the
  reference being the identity mutation run through the same compiled function.
* Files (`write_attribution_tracks`, `write_ism`): one bigWig per track at window index
  i = genome position `window_start(tss, L) + i`, the mask track's coordinates
  (genome_tracks.py). Attributions are signed and belong to one gene, so where the windows
  of several written genes overlap each base holds the value for the gene whose TSS is
  nearest (`nearest_tss_cells`); the ISM bigWig holds max |delta| over the alternatives
  (and over genes).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, Integer

from data_pipeline.batch import SIGNAL_TRACKS, Batch
from data_pipeline.io import atomic_output
from data_pipeline.loader import one_hot_dna
from seq2exp_jax.model.outputs import ModelOutput
from seq2exp_jax.outputs import genome_tracks as tracks

ApplyFn = Callable[[Any, Batch], ModelOutput]
DNA_TRACK = "dna"
TRACKS = (DNA_TRACK,) + SIGNAL_TRACKS  # bigWig names: dna.bw, H3K27ac.bw, DNase.bw, HiC.bw
BASES = "ACGTN"  # the data set's codes 0..4
ISM_COLUMNS = ("chr", "pos", "ref", "alt", "ensid", "delta")


def codes_of(dna: Float[np.ndarray, "L 4"]) -> np.ndarray:
  """One-hot (L, 4) -> uint8 codes (L,), 4 where no channel is set (N, padding)."""
  dna = np.asarray(dna)
  return np.where(dna.max(-1) > 0, dna.argmax(-1), 4).astype(np.uint8)


# ------------------------------------------------------------------ gradient x input

def make_gradient_x_input(apply_fn: ApplyFn) -> Callable[[Any, Batch], dict]:
  """Jitted (params, batch) -> {"prediction": (B,), "dna": attribution (B, L), "signals":
  attribution (B, L, S), and "mask": (B, L) for models with one}; see the module
  docstring."""

  def attribute(params: Any, batch: Batch) -> dict[str, jax.Array]:
    def total(dna, signals):
      out = apply_fn(params, batch.replace(dna=dna, signals=signals))
      return jnp.sum(out.prediction), out
    (_, out), (g_dna, g_sig) = jax.value_and_grad(total, argnums=(0, 1), has_aux=True)(
        batch.dna, batch.signals)
    result = {"prediction": out.prediction, "dna": jnp.sum(g_dna * batch.dna, axis=-1),
              "signals": g_sig * batch.signals}
    if out.mask is not None:
      result["mask"] = out.mask
    return result

  return jax.jit(attribute)


@dataclasses.dataclass(frozen=True)
class Gene:
  """Whose window: the gene, its chromosome and TSS (0-based)."""

  ensid: str
  chrom: str
  tss: int


@dataclasses.dataclass(frozen=True)
class GeneAttribution(Gene):
  """One gene's gradient x input over its window (numpy): dna (L,), signals (L, S)."""

  prediction: float
  dna: Float[np.ndarray, "L"]
  signals: Float[np.ndarray, "L S"]
  mask: Float[np.ndarray, "L"] | None = None  # the model's mask, for the plots

  @property
  def start(self) -> int:
    return tracks.window_start(self.tss, len(self.dna))

  def track(self, name: str) -> np.ndarray:
    """The values (L,) of track `name` (one of TRACKS)."""
    if name == DNA_TRACK:
      return self.dna
    return self.signals[:, SIGNAL_TRACKS.index(name)]


def nearest_tss_cells(windows: list[tuple[str, int, np.ndarray]]
                      ) -> list[tuple[str, int, np.ndarray]]:
  """(chrom, tss, values (L,)) windows -> (chrom, start, values) cropped so that each base
  keeps only the window of the nearest TSS (a tie goes to the upstream gene): no two
  overlap. Of genes sharing a TSS, the first in `windows` keeps the bases up to it."""
  order = sorted(range(len(windows)), key=lambda k: (windows[k][0], windows[k][1], k))
  out = []
  for n, k in enumerate(order):
    chrom, tss, values = windows[k]
    start = tracks.window_start(tss, len(values))
    lo, hi = start, start + len(values)
    if n > 0 and windows[order[n - 1]][0] == chrom:
      lo = max(lo, (windows[order[n - 1]][1] + tss) // 2 + 1)
    if n + 1 < len(order) and windows[order[n + 1]][0] == chrom:
      hi = min(hi, (tss + windows[order[n + 1]][1]) // 2 + 1)
    if lo < hi:
      out.append((chrom, lo, np.asarray(values[lo - start:hi - start], np.float32)))
  return out


def write_attribution_tracks(out_dir: str | os.PathLike, chrom_sizes: dict[str, int],
                             genes: list[GeneAttribution]) -> list[str]:
  """`<track>.bw` for every track of TRACKS in `out_dir` (see the module docstring);
  returns the file names."""
  names = []
  for name in TRACKS:
    cells = nearest_tss_cells([(g.chrom, g.tss, g.track(name)) for g in genes])
    tracks.write_mask_bigwig(pathlib.Path(out_dir) / f"{name}.bw", chrom_sizes, cells)
    names.append(f"{name}.bw")
  return names


# ------------------------------------------------------------------ ISM

def make_mutation_fn(apply_fn: ApplyFn, chunk: int, sharding: Any = None
                     ) -> Callable[..., jax.Array]:
  """Jitted (params, row, positions (K,), codes (K,)) -> predictions (K,), K = `chunk`:
  mutant k is `row` (a Batch of one gene) with base `positions[k]` set to `codes[k]`
  (0..4, 4 = N). `sharding` (e.g. the loader's, on the `data` axis) spreads the K mutants
  over the devices; K must then divide evenly."""

  def mutate(params: Any, row: Batch, positions: Int[Array, "K"], codes: Int[Array, "K"]):
    rows = jax.tree.map(lambda x: jnp.repeat(x, chunk, axis=0), row)
    dna = rows.dna.at[jnp.arange(chunk), positions].set(one_hot_dna(codes))
    rows = rows.replace(dna=dna)
    if sharding is not None:
      rows = jax.lax.with_sharding_constraint(rows, sharding)
    return apply_fn(params, rows).prediction

  return jax.jit(mutate)


def mutation_effects(mutation_fn: Callable[..., jax.Array], params: Any, row: Batch,
                     positions: Integer[np.ndarray, "M"], codes: Integer[np.ndarray, "M"],
                     chunk: int
                     ) -> tuple[float, np.ndarray]:
  """(reference prediction, delta (M,)) of M single-base mutations of `row` (window
  indices `positions`, new codes `codes`), `chunk` mutants per call of `mutation_fn`
  (a `make_mutation_fn` of the same chunk); the last call is padded."""
  positions = np.asarray(positions, np.int32)
  codes = np.asarray(codes, np.int32)
  if positions.shape != codes.shape or positions.ndim != 1:
    raise ValueError(f"positions {positions.shape} and codes {codes.shape}: expected two "
                     "equal 1-d arrays")
  length = int(row.dna.shape[1])
  if positions.size and (positions.min() < 0 or positions.max() >= length):
    raise ValueError(f"positions: expected window indices in [0, {length})")
  if codes.size and (codes.min() < 0 or codes.max() > 4):
    raise ValueError("codes: expected base codes 0..4 (A, C, G, T, N)")
  stored = codes_of(np.asarray(row.dna[0]))
  # The identity mutation first: the reference through the same compiled function.
  all_pos = np.concatenate([[0], positions]).astype(np.int32)
  all_codes = np.concatenate([[stored[0]], codes]).astype(np.int32)
  pad = -len(all_pos) % chunk
  all_pos = np.concatenate([all_pos, np.zeros(pad, np.int32)])
  all_codes = np.concatenate([all_codes, np.full(pad, stored[0], np.int32)])
  predictions = np.concatenate([
      np.asarray(jax.device_get(mutation_fn(params, row, all_pos[i:i + chunk],
                                            all_codes[i:i + chunk])), np.float64)
      for i in range(0, len(all_pos), chunk)])
  reference = float(predictions[0])
  return reference, predictions[1:1 + len(positions)] - reference


@dataclasses.dataclass(frozen=True)
class Mutagenesis(Gene):
  """ISM of one gene over window indices: every position x each base other than the
  stored one (all four at N). Arrays (M,): window index, stored and new codes, delta."""

  reference: float
  positions: Integer[np.ndarray, "M"]
  ref: Integer[np.ndarray, "M"]
  alt: Integer[np.ndarray, "M"]
  delta: Float[np.ndarray, "M"]

  def max_abs(self) -> tuple[int, np.ndarray]:
    """(first window index, max |delta| per position (P,)) over the mutated span."""
    lo, hi = int(self.positions.min()), int(self.positions.max()) + 1
    values = np.zeros(hi - lo, np.float32)
    np.maximum.at(values, self.positions - lo, np.abs(self.delta).astype(np.float32))
    return lo, values


def saturation_mutagenesis(mutation_fn: Callable[..., jax.Array], params: Any, row: Batch,
                           positions: Integer[np.ndarray, "P"], chunk: int, *, ensid: str,
                           chrom: str, tss: int) -> Mutagenesis:
  """ISM of `row` (a Batch of one gene) at window indices `positions`."""
  positions = np.asarray(positions, np.int64)
  if positions.size == 0:
    raise ValueError(f"ISM of {ensid}: no positions")
  stored = codes_of(np.asarray(row.dna[0]))[positions]
  pos, ref, alt = [], [], []
  for base in range(4):
    other = stored != base
    pos.append(positions[other])
    ref.append(stored[other])
    alt.append(np.full(int(other.sum()), base, np.uint8))
  pos, ref, alt = (np.concatenate(a) for a in (pos, ref, alt))
  order = np.lexsort((alt, pos))
  pos, ref, alt = pos[order], ref[order], alt[order]
  reference, delta = mutation_effects(mutation_fn, params, row, pos, alt, chunk)
  return Mutagenesis(ensid, chrom, int(tss), reference, pos, ref, alt, delta)


def write_ism(tsv: str | os.PathLike, bigwig: str | os.PathLike,
              chrom_sizes: dict[str, int], results: list[Mutagenesis], length: int) -> int:
  """The ISM table (ISM_COLUMNS, tab-separated; pos 1-based as in a VCF, so a row is a
  VCF record) and the bigWig of max |delta| per base; atomic. Returns the rows written."""
  lines = ["\t".join(ISM_COLUMNS) + "\n"]
  windows = []
  for r in results:
    start = tracks.window_start(r.tss, length)
    lines += [f"{r.chrom}\t{start + p + 1}\t{BASES[a]}\t{BASES[b]}\t{r.ensid}\t{d:.6g}\n"
              for p, a, b, d in zip(r.positions, r.ref, r.alt, r.delta)]
    lo, values = r.max_abs()
    windows.append((r.chrom, start + lo, values))
  with atomic_output(tsv) as tmp:
    tmp.write_text("".join(lines))
  tracks.write_mask_bigwig(bigwig, chrom_sizes, windows)
  return len(lines) - 1
