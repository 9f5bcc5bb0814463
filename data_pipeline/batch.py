"""`Batch`: every field of a batch with its shape, what the loader yields and the models
read. The contract between the data and the model layers.

A `Batch` is a JAX pytree of its array fields, so it goes into jitted code whole; the host
side gene identities (`genes`: this process's rows only) are dropped when it is flattened,
so they never enter jitted code.

Letters: B batch, L window (positions), S signal tracks, F mRNA features (+ promoter
activity), M candidate-element slots (the promoter first, then up to MAX_ELEMENTS elements),
W element sequence length, G element features.
"""

import dataclasses
from typing import Any

import jax
import numpy as np
from jaxtyping import Array, Bool, Float, Int, UInt8

from data_pipeline.errors import ConfigError
from data_pipeline.layout import RNA_FEATURE_COLUMNS

# The per-base signal tracks, in `signals[..., s]` order.
SIGNAL_TRACKS: tuple[str, ...] = ("H3K27ac", "DNase", "HiC")  # HiC as log10(1 + contact)
NUM_SIGNALS = len(SIGNAL_TRACKS)  # S
NUM_RNA_FEATURES = len(RNA_FEATURE_COLUMNS) + 1  # F: the mRNA features, promoter activity
DNA_CHANNELS = 4  # one-hot A, C, G, T; N is all zeros
# Fields with a per-base axis (B, L, ...): cropped together to the window a model reads.
PER_BASE = ("dna", "signals", "blacklist", "includelist", "peaks", "truth")
# Each gene's candidate elements (EPInformer's input): slot 0 the promoter (TSS +- W/2), then
# up to MAX_ELEMENTS elements with W/2 < distance to the TSS <= ELEMENT_RADIUS, nearest first.
MAX_ELEMENTS = 60
ELEMENT_SLOTS = MAX_ELEMENTS + 1  # M
ELEMENT_WIDTH = 2000  # W
ELEMENT_RADIUS = 100_000
# `element_feat[..., g]` order; slot 0 (the promoter) holds zeros, as in EPInformer.
ELEMENT_FEATURES: tuple[str, ...] = ("distance_kb", "log10_contact", "activity")  # G
NUM_ELEMENT_FEATURES = len(ELEMENT_FEATURES)
# Fields with a per-element axis (B, M, ...): never cropped with the window.
PER_ELEMENT = ("element_dna", "element_feat", "element_valid", "element_pos")


@dataclasses.dataclass(frozen=True)
class Genes:
  """Who the rows of a batch are (host numpy, this process's b = B / processes rows)."""

  ensid: np.ndarray  # str (b,)
  chrom: np.ndarray  # str (b,)
  tss: np.ndarray  # int64 (b,), 0-based; the window is [tss - L // 2, tss + L // 2)


@dataclasses.dataclass(frozen=True)
class Batch:
  """One batch. Model inputs: dna, signals, rna_feat, blacklist; the rest is for the loss,
  the fixed-mask baselines, evaluation and the synthetic genome's truth. Optional fields are
  None when absent (e.g. a batch built from raw arrays for serving)."""

  dna: Float[Array, "B L 4"]  # one-hot; N and padding all zero
  signals: Float[Array, "B L S"]  # H3K27ac, DNase, log10(1 + Hi-C)
  rna_feat: Float[Array, "B F"]  # 8 mRNA features, then promoter activity
  blacklist: Bool[Array, "B L"] | None = None  # ENCODE blacklist: masks force it to 0
  includelist: Bool[Array, "B L"] | None = None
  peaks: Bool[Array, "B L"] | None = None  # MACS3 bdgpeakcall on DNase
  target: Float[Array, "B"] | None = None  # log10(1 + CAGE)
  valid: Bool[Array, "B"] | None = None  # False on evaluation padding rows
  truth: UInt8[Array, "B L"] | None = None  # synthetic only: 1 causal, 2 decoy, 0 other
  # Candidate elements (see ELEMENT_* above): one-hot sequence centred on each element
  # (an element longer than W is cut to its central W, a shorter one zero-padded both sides),
  # its features, whether the slot holds an element, its genomic [start, end) (-1 if empty).
  element_dna: Float[Array, "B M W 4"] | None = None
  element_feat: Float[Array, "B M G"] | None = None
  element_valid: Bool[Array, "B M"] | None = None
  element_pos: Int[Array, "B M 2"] | None = None
  genes: Genes | None = None  # host side; dropped under jit

  @property
  def window(self) -> int:
    """L."""
    return int(self.dna.shape[1])

  def replace(self, **changes: Any) -> "Batch":
    return dataclasses.replace(self, **changes)

  def arrays(self) -> dict[str, Any]:
    """The array fields that are present, by name."""
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
            if f.name != "genes" and getattr(self, f.name) is not None}

  @classmethod
  def zeros(cls, batch_size: int, length: int, *, elements: bool = False,
            **fields: Any) -> "Batch":
    """Model inputs of zeros (dna all N), float32, e.g. for init and export; `elements`
    adds the candidate-element fields: every slot all N and empty but the promoter's."""
    if elements:
      valid = np.zeros((batch_size, ELEMENT_SLOTS), bool)
      valid[:, 0] = True
      fields = dict(
          element_dna=np.zeros((batch_size, ELEMENT_SLOTS, ELEMENT_WIDTH, DNA_CHANNELS),
                               np.float32),
          element_feat=np.zeros((batch_size, ELEMENT_SLOTS, NUM_ELEMENT_FEATURES),
                                np.float32),
          element_valid=valid,
          element_pos=np.full((batch_size, ELEMENT_SLOTS, 2), -1, np.int64), **fields)
    return cls(dna=np.zeros((batch_size, length, DNA_CHANNELS), np.float32),
               signals=np.zeros((batch_size, length, NUM_SIGNALS), np.float32),
               rna_feat=np.zeros((batch_size, NUM_RNA_FEATURES), np.float32),
               blacklist=np.zeros((batch_size, length), bool), **fields)


jax.tree_util.register_dataclass(
    Batch, data_fields=[f.name for f in dataclasses.fields(Batch) if f.name != "genes"],
    meta_fields=[], drop_fields=["genes"])


def crop(example: dict[str, np.ndarray], window: int | None) -> dict[str, np.ndarray]:
  """The central `window` positions of every per-base field of one host example (position
  axis first); the TSS stays at index window // 2. None keeps the stored window."""
  per_base = [k for k in PER_BASE if k in example]
  if window is None or not per_base:
    return example
  length = np.shape(example[per_base[0]])[0]
  if window > length or window % 2 or window < 1:
    raise ConfigError(f"data.window {window}: expected an even length <= the stored window "
                     f"{length}")
  start = length // 2 - window // 2
  return {k: (v[start:start + window] if k in PER_BASE else v) for k, v in example.items()}
