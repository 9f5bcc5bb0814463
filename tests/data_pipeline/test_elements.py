"""Candidate elements as the loader yields them (one-hot, sharded along `data` on 8 devices,
not cropped with the window, padding rows empty) and as synth nominates them (ABC's
EnhancerList: every element, nothing says which is causal). The reader's rules and errors
are tested in test_candidate_elements.py."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from conftest_data import tiny_synthetic
from data_pipeline.batch import ELEMENT_SLOTS, ELEMENT_WIDTH
from data_pipeline.layout import GeneExpLayout
from data_pipeline.loader import ShardedLoader
from data_pipeline.readers import elements as el


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  return tiny_synthetic(tmp_path_factory.getbasetemp())


def test_loader_yields_elements_one_hot_sharded_and_uncropped(tiny):
  _, ds_dir = tiny
  meta = json.loads((ds_dir / "metadata.json").read_text())
  assert meta["elements_source"] == el.SOURCE_ABC  # synth writes an EnhancerList
  loader = ShardedLoader(ds_dir, "valid", 8, shuffle=False, drop_remainder=False,
                         num_epochs=1, window=1024)
  batch = next(iter(loader))
  assert batch.dna.shape == (8, 1024, 4)
  assert batch.element_dna.shape == (8, ELEMENT_SLOTS, ELEMENT_WIDTH, 4)
  assert batch.element_dna.dtype == np.float32
  for x in (batch.element_dna, batch.element_feat, batch.element_valid, batch.element_pos):
    assert x.sharding.spec == P("data") and len(x.sharding.device_set) == 8
  valid = np.asarray(batch.valid)
  assert valid.sum() == loader.num_examples < 8  # the rest is padding
  ev, ed = np.asarray(batch.element_valid), np.asarray(batch.element_dna)
  assert ev[valid, 0].all() and ev[valid, 1:].any()  # the real genes have elements
  assert not ev[~valid].any() and not ed[~valid].any()
  np.testing.assert_array_equal(np.asarray(batch.element_pos)[~valid], -1)
  # One-hot of the stored codes: every filled base has exactly one 1.
  assert set(np.unique(ed[valid].sum(-1))) <= {0.0, 1.0}


def test_synth_enhancer_list_does_not_reveal_causal_elements(tiny):
  root, _ = tiny
  lay = GeneExpLayout(root, "K562")
  with lay.enhancer_list.open() as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
  assert set(rows[0]) == {"chr", "start", "end", "name", "class", "activity_base",
                          "H3K27ac.RPM", "DHS.RPM"}
  listed = {(r["chr"], int(r["start"]), int(r["end"])) for r in rows}
  with (lay.truth_dir / "elements.tsv").open() as f:
    truth = list(csv.DictReader(f, delimiter="\t"))
  # Every planted element is a candidate, causal and decoy alike, and nothing names a class.
  assert {(t["chrom"], int(t["start"]), int(t["end"])) for t in truth} <= listed
  assert {r["class"] for r in rows} <= {"promoter", "genic", "intergenic"}
  assert not any(k in r["name"] for r in rows for k in ("causal", "dead", "split", "insul"))
