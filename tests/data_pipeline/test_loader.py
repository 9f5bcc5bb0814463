"""ShardedLoader on the tiny synthetic data set (18 train genes) with 8 simulated devices:
each example once per epoch, same order for the same seed, exact resume, one-hot on device,
per-process parts that add up to the global batch, and 1 device."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from beartype import beartype
from jax.sharding import PartitionSpec as P
from jaxtyping import jaxtyped

from conftest_data import SYNTH_WINDOW, tiny_synthetic
from data_pipeline.batch import PER_ELEMENT, Batch, crop
from data_pipeline.loader import ShardedLoader, one_hot_dna

N_TRAIN = 18
GB = 8


@pytest.fixture(scope="module")
def ds_dir(tmp_path_factory):
  return tiny_synthetic(tmp_path_factory.getbasetemp())[1]


def ensids(batches):
  return [list(b.genes.ensid) for b in batches]


def take(loader, n):
  out = []
  for batch in loader:
    out.append(batch)
    if len(out) == n:
      break
  return out


def test_eight_devices_each_example_once_per_epoch(ds_dir):
  assert jax.device_count() == 8
  loader = ShardedLoader(ds_dir, "train", GB, seed=3, num_epochs=2)
  assert loader.steps_per_epoch == N_TRAIN // GB == 2
  batches = list(loader)
  assert len(batches) == 4
  for epoch in (batches[:2], batches[2:]):
    seen = [e for b in epoch for e in b.genes.ensid]
    assert len(seen) == len(set(seen)) == 16  # 16 of 18: the remainder is dropped
  assert ensids(batches[:2]) != ensids(batches[2:])  # reshuffled per epoch
  b = batches[0]
  assert b.dna.shape == (GB, SYNTH_WINDOW, 4) and b.dna.dtype == np.float32
  assert b.signals.shape == (GB, SYNTH_WINDOW, 3)
  assert b.rna_feat.shape == (GB, 9) and b.target.shape == (GB,)
  dtypes = {k: str(getattr(b, k).dtype) for k in ("signals", "rna_feat", "target", "blacklist",
                                          "includelist", "peaks", "truth", "valid")}
  assert dtypes == {"signals": "float32", "rna_feat": "float32", "target": "float32",
                    "blacklist": "bool", "includelist": "bool", "peaks": "bool",
                    "truth": "uint8", "valid": "bool"}
  for key in ("dna", "signals", "blacklist", "peaks", "truth", "target", "valid"):
    value = getattr(b, key)
    assert isinstance(value, jax.Array)
    assert value.sharding.spec[0] == "data", key
    assert len(value.sharding.device_set) == 8
    assert value.addressable_shards[0].data.shape[0] == 1  # one example per device
  assert isinstance(b.genes.ensid, np.ndarray) and b.genes.tss.dtype == np.int64


def test_eval_mode_pads_and_marks_valid(ds_dir):
  loader = ShardedLoader(ds_dir, "train", GB, shuffle=False, num_epochs=1,
                         drop_remainder=False)
  batches = list(loader)
  assert len(batches) == 3 == loader.steps_per_epoch
  valid = np.concatenate([np.asarray(b.valid) for b in batches])
  assert valid.sum() == N_TRAIN and not valid[N_TRAIN:].any()
  seen = [e for b in batches for e, v in zip(b.genes.ensid, np.asarray(b.valid)) if v]
  source = tfds.builder_from_directory(str(ds_dir)).as_data_source()["train"]
  assert seen == [source[i]["ensid"].decode() for i in range(N_TRAIN)]  # in order, once
  last = batches[-1]
  assert not np.asarray(last.dna)[2:].any() and not np.asarray(last.target)[2:].any()


def test_same_seed_same_sequence_other_seed_differs(ds_dir):
  a = list(ShardedLoader(ds_dir, "train", GB, seed=7, num_epochs=2))
  b = list(ShardedLoader(ds_dir, "train", GB, seed=7, num_epochs=2))
  c = list(ShardedLoader(ds_dir, "train", GB, seed=8, num_epochs=2))
  assert ensids(a) == ensids(b) and ensids(a) != ensids(c)
  for x, y in zip(a, b):
    for key in ("dna", "signals", "target", "truth"):
      np.testing.assert_array_equal(np.asarray(getattr(x, key)), np.asarray(getattr(y, key)))


def test_resume_mid_epoch_continues_the_same_sequence(ds_dir):
  full = ensids(take(ShardedLoader(ds_dir, "train", GB, seed=11), 5))
  first = ShardedLoader(ds_dir, "train", GB, seed=11)
  head = ensids(take(first, 3))  # stops mid-way through epoch 2
  state = json.loads(json.dumps(first.get_state()))  # survives a checkpoint
  assert state["step"] == 3
  second = ShardedLoader(ds_dir, "train", GB, seed=11)
  second.set_state(state)
  tail = ensids(take(second, 2))
  assert head + tail == full
  other = ShardedLoader(ds_dir, "train", GB, seed=12)
  with pytest.raises(ValueError, match="seed"):
    other.set_state(state)


def test_one_hot_on_device_matches_codes(ds_dir):
  loader = ShardedLoader(ds_dir, "train", GB, shuffle=False, num_epochs=1)
  host = next(loader.host_batches())
  codes = host["dna"]
  dna = np.asarray(next(iter(loader)).dna)
  assert ((codes == 4) == (dna.sum(-1) == 0)).all()
  acgt = codes < 4
  np.testing.assert_array_equal(dna.argmax(-1)[acgt], codes[acgt])
  np.testing.assert_array_equal(np.asarray(one_hot_dna(np.array([[0, 1, 2, 3, 4]], np.uint8))),
                                [np.vstack([np.eye(4), np.zeros(4)])])


def test_process_parts_add_up_to_the_global_batch(ds_dir):
  # Two simulated processes: each reads its own half of every global batch.
  whole = ShardedLoader(ds_dir, "train", GB, seed=5, num_epochs=1)
  global_ids = [list(h["ensid"]) for h in whole.host_batches()]
  parts = []
  for p in range(2):
    loader = ShardedLoader(ds_dir, "train", GB, seed=5, num_epochs=1)
    loader.process_index, loader.process_count, loader.local_batch_size = p, 2, GB // 2
    parts.append([list(h["ensid"]) for h in loader.host_batches()])
  for step, ids in enumerate(global_ids):
    a, b = parts[0][step], parts[1][step]
    assert len(a) == len(b) == GB // 2 and not set(a) & set(b)
    assert sorted(a + b) == sorted(ids)


def test_single_device(ds_dir):
  mesh = jax.make_mesh((1,), ("data",), devices=jax.devices()[:1],
                       axis_types=(jax.sharding.AxisType.Auto,))
  loader = ShardedLoader(ds_dir, "train", 2, mesh=mesh, seed=0, num_epochs=1)
  assert loader.steps_per_epoch == 9
  batches = list(loader)
  assert len({e for b in batches for e in b.genes.ensid}) == N_TRAIN
  assert batches[0].dna.sharding.device_set == {jax.devices()[0]}
  assert batches[0].dna.sharding.spec == P("data")


def test_bad_arguments(ds_dir, tmp_path):
  with pytest.raises(ValueError, match="divisible by the 'data' mesh axis"):
    ShardedLoader(ds_dir, "train", 6)
  with pytest.raises(ValueError, match="fewer than one global batch"):
    ShardedLoader(ds_dir, "valid", GB)
  with pytest.raises(ValueError, match="no split 'dev'"):
    ShardedLoader(ds_dir, "dev", GB)
  with pytest.raises(FileNotFoundError, match="not a prepared data set"):
    ShardedLoader(tmp_path, "train", GB)
  valid = list(ShardedLoader(ds_dir, "valid", GB, drop_remainder=False, num_epochs=1))
  assert len(valid) == 1 and np.asarray(valid[0].valid).sum() == 1


def test_no_tensorflow_import(ds_dir):
  code = ("import sys; from data_pipeline.loader import ShardedLoader; "
          f"b = next(iter(ShardedLoader({str(ds_dir)!r}, 'train', 8, num_epochs=1))); "
          "b.dna.block_until_ready(); assert 'tensorflow' not in sys.modules, 'tf'; "
          "print('ok', b.dna.shape)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300, check=False)
  assert out.returncode == 0, out.stderr[-2000:]
  assert f"ok (8, {SYNTH_WINDOW}, 4)" in out.stdout


def test_window_crop_on_the_host_keeps_the_tss_centred(ds_dir):
  window = SYNTH_WINDOW // 4
  whole = next(iter(ShardedLoader(ds_dir, "train", GB, shuffle=False, num_epochs=1)))
  loader = ShardedLoader(ds_dir, "train", GB, shuffle=False, num_epochs=1, window=window)
  assert loader.stored_window == SYNTH_WINDOW
  cropped = next(iter(loader))
  start = SYNTH_WINDOW // 2 - window // 2
  for key in ("dna", "signals", "blacklist", "peaks", "truth"):
    np.testing.assert_array_equal(np.asarray(getattr(cropped, key)),
                                  np.asarray(getattr(whole, key))[:, start:start + window])
  np.testing.assert_array_equal(np.asarray(cropped.rna_feat), np.asarray(whole.rna_feat))
  with pytest.raises(ValueError, match="data.window 7: expected an even length"):
    crop({"dna": np.zeros(16)}, 7)
  with pytest.raises(ValueError, match="data.window 32"):
    crop({"dna": np.zeros(16)}, 32)


def test_batch_is_a_pytree_without_its_gene_identities(ds_dir):
  batch = next(iter(ShardedLoader(ds_dir, "train", GB, shuffle=False, num_epochs=1)))
  leaves = jax.tree.leaves(batch)
  assert len(leaves) == len(batch.arrays()) == 13  # every array field; genes are not leaves
  inside = jax.jit(lambda b: (b.genes is None, b.dna.sum()))(batch)
  assert bool(inside[0]) is True
  assert batch.genes is not None and batch.window == SYNTH_WINDOW
  zeros = Batch.zeros(2, 10)
  assert zeros.dna.shape == (2, 10, 4) and zeros.peaks is None and zeros.genes is None


def test_batch_fields_have_their_annotated_shapes(ds_dir):
  """Every field of a loader batch matches its jaxtyping annotation, with one size per
  letter across the fields (B, L, S, F); a wrong shape is caught."""
  checked = jaxtyped(typechecker=beartype)(
      dataclasses.dataclass(frozen=True)(type("CheckedBatch", (Batch,), {})))
  batch = next(iter(ShardedLoader(ds_dir, "train", GB, shuffle=False, num_epochs=1)))
  checked(**batch.arrays(), genes=batch.genes)
  with pytest.raises(TypeError, match="signals"):
    checked(**dict(batch.arrays(), signals=batch.signals[:, :-1]))


def test_elements_one_hot_sharded_uncropped_and_empty_on_padding_rows(ds_dir):
  loader = ShardedLoader(ds_dir, "train", GB, shuffle=False, num_epochs=1,
                         drop_remainder=False, window=SYNTH_WINDOW // 2)
  batches = list(loader)
  source = tfds.builder_from_directory(str(ds_dir)).as_data_source()["train"]
  first = batches[0]
  assert first.dna.shape == (GB, SYNTH_WINDOW // 2, 4)  # the window is cropped, not these
  shapes = {k: (getattr(first, k).shape, str(getattr(first, k).dtype)) for k in PER_ELEMENT}
  assert shapes == {"element_dna": ((GB, 61, 2000, 4), "float32"),
                    "element_feat": ((GB, 61, 3), "float32"),
                    "element_valid": ((GB, 61), "bool"),
                    "element_pos": ((GB, 61, 2), "int32")}  # int64 without jax x64
  for key in PER_ELEMENT:
    value = getattr(first, key)
    assert value.sharding.spec[0] == "data" and len(value.sharding.device_set) == 8, key
    assert value.addressable_shards[0].data.shape[0] == 1
  for row, index in enumerate(range(GB)):
    stored = source[index]
    want = np.eye(5, dtype=np.float32)[stored["element_dna"]][..., :4]  # N all zero
    np.testing.assert_array_equal(np.asarray(first.element_dna[row]), want)
    for key in ("element_feat", "element_valid", "element_pos"):
      np.testing.assert_array_equal(np.asarray(getattr(first, key)[row]), stored[key])
  valid = np.asarray(first.element_valid)
  assert valid[:, 0].all() and valid[:, 1:].any(axis=1).all()  # promoter + some elements
  last = batches[-1]  # 18 = 8 + 8 + 2: rows 2.. are padding
  assert not np.asarray(last.element_valid)[2:].any()
  assert (np.asarray(last.element_pos)[2:] == -1).all()
  assert not np.asarray(last.element_dna)[2:].any() and not np.asarray(last.element_feat)[2:].any()
