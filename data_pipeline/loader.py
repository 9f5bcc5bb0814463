"""Sharded, resumable loader of the prepared GeneExp data set, without TensorFlow.

grain reads the TFDS array_record data source with worker threads; each process reads only
its own examples of every global batch, cropped on the host to the window the model reads;
the batch becomes a `Batch` of global `jax.Array`s sharded along the `data` mesh axis
(`jax.make_array_from_process_local_data`), and `dna` (and `element_dna`, the candidate
elements' sequences, when the data set stores them; never cropped) is expanded to one-hot on
device (uint8 crosses host->device: 16x fewer bytes than float32 one-hot).

Order: epoch e visits the examples in a permutation drawn from (seed, e) (numpy's PCG64
seeded with [seed, e], computed once per epoch); step s of the run holds positions [s*B, (s+1)*B) of that sequence. The position is
just the step count, so `get_state()` is a small JSON-able dict and `set_state` resumes
exactly. Process p of P reads positions p, p+P, ... of each global batch, so the processes'
parts are disjoint and together are the whole batch.

Training (drop_remainder=True) uses floor(N/B) full batches per epoch; evaluation
(drop_remainder=False) uses ceil(N/B) batches, pads the last one with zero examples and marks
them with `valid` = False (their elements too: element_valid False, element_pos -1), so
every example is seen exactly once.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import queue
import sys
import threading
from typing import Any, Iterator, Sequence

import grain
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from jaxtyping import Array, Float, Integer

from data_pipeline.batch import Batch, Genes, crop
from data_pipeline.errors import ConfigError, DataSetError, MissingInputError

# Features that stay on the host (gene identities); everything else becomes a jax.Array.
HOST_FEATURES = tuple(f.name for f in dataclasses.fields(Genes))


def default_mesh() -> Mesh:
  """All devices on one `data` axis."""
  return jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))


def open_split(data: str | os.PathLike | Any, split: str) -> Sequence[dict[str, Any]]:
  """A random-access source of `split` from a prepared data set directory (its shards
  checked first) or a TFDS builder."""
  checked_dir = None
  if isinstance(data, (str, os.PathLike)):
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    path = pathlib.Path(data)
    if not (path / "dataset_info.json").is_file():
      raise MissingInputError(f"{path}: not a prepared data set directory (no "
                              "dataset_info.json); build one with `seq2exp build-data`")
    try:
      data, checked_dir = tfds.builder_from_directory(str(path)), path
    except Exception as e:  # noqa: BLE001  (TFDS raises many kinds for a damaged info file)
      raise DataSetError(f"{path}: dataset_info.json or features.json cannot be read "
                         f"({type(e).__name__}: {' '.join(str(e).split())[:160]}); rebuild "
                         "the data set with `seq2exp build-data`") from e
  splits = data.info.splits
  if split not in splits:
    raise DataSetError(f"{data.data_dir}: no split {split!r}; it has {sorted(splits)}")
  if checked_dir is not None:
    check_shards(checked_dir, split, list(splits[split].shard_lengths))
  return data.as_data_source(split=split)


def check_shards(directory: pathlib.Path, split: str, lengths: list[int]) -> None:
  """Every array_record shard of `split` exists and holds the records dataset_info.json
  lists for it (a truncated or damaged shard fails here, named, not at some later read)."""
  from array_record.python import array_record_module  # pylint: disable=import-outside-toplevel
  shards = sorted(directory.glob(f"*-{split}.array_record-*"))
  hint = "rebuild the data set with `seq2exp build-data`"
  if len(shards) != len(lengths):
    raise DataSetError(f"{directory}: split {split!r} has {len(shards)} array_record shard "
                       f"file(s), dataset_info.json lists {len(lengths)}; {hint}")
  for i, (shard, want) in enumerate(zip(shards, lengths)):
    try:
      have = array_record_module.ArrayRecordReader(str(shard)).num_records()
    except Exception as e:  # noqa: BLE001  (the reader raises RuntimeError or ValueError)
      raise DataSetError(f"{shard}: shard {i + 1} of {len(shards)} of split {split!r} cannot "
                         f"be opened ({' '.join(str(e).split())[:160]}); {hint}") from e
    if have != want:
      raise DataSetError(f"{shard}: shard {i + 1} of {len(shards)} of split {split!r} holds "
                         f"{have} records, dataset_info.json says {want} (truncated or "
                         f"damaged); {hint}")


# TFDS returns scalar features as Python numbers; give them the stored dtypes back.
_SCALAR_DTYPES = {"target": np.float32, "tss": np.int64}


def _decode_example(example: dict[str, Any]) -> dict[str, Any]:
  """TFDS numpy example -> plain numpy (text decoded to str, scalars as 0-d arrays)."""
  out = {}
  for k, v in example.items():
    if isinstance(v, bytes):
      v = v.decode()
    elif k in _SCALAR_DTYPES:
      v = np.asarray(v, dtype=_SCALAR_DTYPES[k])
    out[k] = v if isinstance(v, (np.ndarray, str)) else np.asarray(v)
  return out


def _blank(example: dict[str, Any]) -> dict[str, Any]:
  """A padding example shaped like `example`: zeros, empty strings, dna and element_dna all
  N (so their one-hot is all zero), element_pos -1 (no element)."""
  blank = {k: "" if isinstance(v, str) else np.zeros_like(v) for k, v in example.items()}
  for key, fill in (("dna", 4), ("element_dna", 4), ("element_pos", -1)):
    if key in example:
      blank[key] = np.full_like(example[key], fill)
  return blank


def _stack(examples: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
  return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


def one_hot_dna(dna: Integer[Array, "B *P"]) -> Float[Array, "B *P 4"]:
  """dna: uint8 (B, L) (or (B, M, W)) codes A=0 C=1 G=2 T=3 N=4 -> float32 (..., 4), N all
  zero."""
  # A row lookup (rows of eye(4) and a zero row for N) is faster on CPU than one_hot's
  # compare-and-convert, and the same on accelerators.
  table = jnp.concatenate([jnp.eye(4, dtype=jnp.float32), jnp.zeros((1, 4), jnp.float32)])
  return table[dna.astype(jnp.int32)]


class ShardedLoader:
  """Iterates global batches of one split as `Batch`es (see data_pipeline/batch.py; `genes`
  holds this process's rows only); see the module docstring for the order.

  window: the central crop of the stored window every batch holds (None: all of it).
  """

  def __init__(self, data: str | os.PathLike | Any, split: str, global_batch_size: int,
               mesh: Mesh | None = None, seed: int = 0, shuffle: bool = True,
               num_epochs: int | None = None, drop_remainder: bool = True,
               num_threads: int = 2, prefetch: int = 2, window: int | None = None):
    self.source = open_split(data, split)
    self.split = split
    self.window = window
    self.num_examples = len(self.source)
    self.mesh = default_mesh() if mesh is None else mesh
    self.global_batch_size = int(global_batch_size)
    self.process_index, self.process_count = jax.process_index(), jax.process_count()
    data_size = self.mesh.shape["data"]
    if self.global_batch_size % data_size or self.global_batch_size % self.process_count:
      raise ConfigError(f"batch size {self.global_batch_size}: must be divisible by the "
                       f"'data' mesh axis ({data_size}) and the process count "
                       f"({self.process_count})")
    self.local_batch_size = self.global_batch_size // self.process_count
    if not 0 <= seed < 2**32:
      raise ConfigError(f"seed {seed}: expected 0 <= seed < 2**32")
    self.seed, self.shuffle, self.num_epochs = seed, shuffle, num_epochs
    self.drop_remainder = drop_remainder
    if drop_remainder:
      self.steps_per_epoch = self.num_examples // self.global_batch_size
    else:
      self.steps_per_epoch = -(-self.num_examples // self.global_batch_size)
    if self.steps_per_epoch == 0:
      raise ConfigError(f"split {split!r} has {self.num_examples} examples, fewer than one "
                       f"global batch of {self.global_batch_size}; use a smaller batch or "
                       "drop_remainder=False")
    self.num_steps = (sys.maxsize // self.global_batch_size if num_epochs is None
                      else self.steps_per_epoch * num_epochs)
    self.num_threads, self.prefetch = num_threads, prefetch
    self.sharding = NamedSharding(self.mesh, P("data"))
    self._one_hot = jax.jit(one_hot_dna, out_shardings=self.sharding)
    self._blank = _blank(self._decode(self.source[0]))
    self._permutations: dict[int, np.ndarray] = {}  # epoch -> order; small LRU below
    self._lock = threading.Lock()
    self._step = 0

  # ------------------------------------------------------------------ order and state

  def example_index(self, position: int) -> int:
    """Data set index at `position` of the run's sequence, or -1 for padding."""
    epoch_len = self.steps_per_epoch * self.global_batch_size
    epoch, k = divmod(position, epoch_len)
    if k >= self.num_examples:
      return -1
    if not self.shuffle:
      return k
    return int(self.permutation(epoch)[k])

  def permutation(self, epoch: int) -> np.ndarray:
    """int64 (N,): the order of epoch `epoch` (the same for every process)."""
    with self._lock:  # reader threads share the cache
      perm = self._permutations.get(epoch)
      if perm is None:
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)
        self._permutations[epoch] = perm
        for old in [e for e in self._permutations if e < epoch - 1]:
          del self._permutations[old]
      return perm

  def get_state(self) -> dict[str, Any]:
    """JSON-able position: the next step, plus what must match on restore."""
    return {"step": self._step, "seed": self.seed, "shuffle": self.shuffle,
            "split": self.split, "num_examples": self.num_examples,
            "global_batch_size": self.global_batch_size,
            "drop_remainder": self.drop_remainder}

  def set_state(self, state: dict[str, Any]) -> None:
    """Continues from `state` (from `get_state`) at the next `iter()`."""
    mine = self.get_state()
    for key in mine:
      if key != "step" and state.get(key) != mine[key]:
        raise ValueError(f"loader state {key}={state.get(key)!r} does not match this "
                         f"loader ({mine[key]!r})")
    self._step = int(state["step"])

  def rewind(self) -> None:
    """Back to the first batch: each evaluation pass over a split starts here."""
    self._step = 0

  # ------------------------------------------------------------------ reading

  def _decode(self, example: dict[str, Any]) -> dict[str, Any]:
    return crop(_decode_example(example), self.window)

  @property
  def stored_window(self) -> int:
    """The window length the data set stores (before the crop to `window`)."""
    return int(np.shape(self.source[0]["dna"])[0])

  def _read(self, position: int) -> dict[str, Any]:
    index = self.example_index(position)
    if index < 0:
      example = dict(self._blank)
      example["valid"] = np.bool_(False)
    else:
      example = self._decode(self.source[index])
      example["valid"] = np.bool_(True)
    return example

  def host_batches(self, start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """This process's part (b rows) of each global batch from `start_step`, as numpy."""
    positions = grain.MapDataset.range(self.num_steps * self.global_batch_size)
    mine = positions[self.process_index::self.process_count]
    mine = mine[start_step * self.local_batch_size:]
    ds = mine.map(self._read).to_iter_dataset(grain.ReadOptions(
        num_threads=self.num_threads,
        prefetch_buffer_size=max(1, self.prefetch) * self.local_batch_size))
    return iter(ds.batch(self.local_batch_size, drop_remainder=True, batch_fn=_stack))

  def to_global(self, host: dict[str, np.ndarray]) -> Batch:
    """Host batch -> a Batch of global jax.Arrays (sharded on `data`), one-hot dna; the gene
    identities stay on the host."""
    arrays = {key: jax.make_array_from_process_local_data(self.sharding, value)
              for key, value in host.items() if key not in HOST_FEATURES}
    for key in ("dna", "element_dna"):
      if key in arrays:
        arrays[key] = self._one_hot(arrays[key])
    return Batch(**arrays, genes=Genes(**{k: host[k] for k in HOST_FEATURES}))

  def __iter__(self) -> Iterator[Batch]:
    """Global batches from the current state; device transfer runs `prefetch` ahead."""
    host = self.host_batches(self._step)
    if self.prefetch <= 0:
      for h in host:
        self._step += 1
        yield self.to_global(h)
      return
    done = object()
    q: queue.Queue = queue.Queue(maxsize=self.prefetch)
    stop = threading.Event()

    def produce():
      try:
        for h in host:
          if stop.is_set():
            return
          q.put(self.to_global(h))
        q.put(done)
      except BaseException as e:  # pylint: disable=broad-except
        q.put(e)

    thread = threading.Thread(target=produce, daemon=True, name="ShardedLoader-prefetch")
    thread.start()
    try:
      while True:
        item = q.get()
        if item is done:
          return
        if isinstance(item, BaseException):
          raise item
        self._step += 1
        yield item
    finally:
      stop.set()
      while thread.is_alive():  # unblock a producer waiting on a full queue
        try:
          q.get_nowait()
        except queue.Empty:
          thread.join(timeout=0.05)
