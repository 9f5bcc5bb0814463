"""The shared reading and writing: one chromosome-length reader for every form, atomic
files and directories."""

import json
import shutil

import pytest
import tensorflow_datasets as tfds

from conftest_data import tiny_synthetic
from data_pipeline import io
from data_pipeline.errors import DataFormatError
from data_pipeline.layout import GeneExpLayout


def test_chrom_lengths_from_every_form(tmp_path):
  root = tmp_path / "chr_length.json"
  root.write_text(json.dumps({"hg38": {"chr2": 2500, "chr1": 3000}}))
  assert list(io.read_chrom_lengths(root).items()) == [("chr2", 2500), ("chr1", 3000)]
  sizes = tmp_path / "hg.chrom.sizes"
  sizes.write_text("chr2\t2500\nchr1\t3000\n")
  assert list(io.read_chrom_lengths(sizes).items()) == [("chr2", 2500), ("chr1", 3000)]
  flat = tmp_path / "sizes.json"
  flat.write_text(json.dumps({"chrX": 10, "chr1": 20}))
  assert list(io.read_chrom_lengths(flat).items()) == [("chrX", 10), ("chr1", 20)]


@pytest.mark.parametrize("name,text,message", [
    ("hg.chrom.sizes", "chr2\t2500\nchr1\tlong\n", r"chrom\.sizes: line 2"),
    ("hg.chrom.sizes", "chr2\t2500\nchr2\t3000\n", "listed twice"),
    ("sizes.json", json.dumps({"chr1": 0}), r"lengths\.chr1 = 0, expected a positive"),
    ("chr_length.json", json.dumps({"hg38": {"chr1": True}}), r"hg38\.chr1 = True"),
    ("chr_length.json", json.dumps({"hg19": {"chr1": 5}}), "expected an object with key"),
    ("chr_length.json", "{not json", "not valid JSON"),
    ("chr_length.json", json.dumps({"hg38": {}}), "non-empty object"),
])
def test_bad_chrom_lengths_name_the_file_and_field(tmp_path, name, text, message):
  path = tmp_path / name
  path.write_text(text)
  with pytest.raises(DataFormatError, match=message):
    io.read_chrom_lengths(path)
  with pytest.raises(FileNotFoundError, match="no such file"):
    io.read_chrom_lengths(tmp_path / "absent.json")


def test_prepared_data_set_keeps_the_roots_chrom_lengths(tmp_path_factory, tmp_path):
  root, ds_dir = tiny_synthetic(tmp_path_factory.getbasetemp())
  want = io.read_chrom_lengths(GeneExpLayout(root, "K562").chr_length_json)
  got = io.read_chrom_lengths(ds_dir)
  assert list(got.items()) == list(want.items()) and want
  info = tfds.builder_from_directory(str(ds_dir)).info
  assert dict(info.metadata[io.CHROM_LENGTHS_KEY]) == want
  # A data set built before lengths were stored still loads, and says how to get them.
  old = tmp_path / "old"
  shutil.copytree(ds_dir, old)
  (old / "metadata.json").unlink()
  assert len(tfds.builder_from_directory(str(old)).as_data_source()["valid"]) == 1
  with pytest.raises(FileNotFoundError, match="build-data.*--chrom-sizes"):
    io.read_chrom_lengths(old)
  with pytest.raises(FileNotFoundError, match="dataset_info.json"):
    io.read_chrom_lengths(tmp_path)


def test_a_failed_write_keeps_the_old_file(tmp_path):
  path = tmp_path / "out.json"
  io.write_json(path, {"a": 1})
  with pytest.raises(RuntimeError):
    with io.atomic_output(path) as tmp:
      tmp.write_text("half")
      raise RuntimeError("killed")
  assert json.loads(path.read_text()) == {"a": 1}
  assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temp file left


def test_atomic_output_dir_replaces_only_a_complete_directory(tmp_path):
  out = tmp_path / "data"
  with io.atomic_output_dir(out, overwrite=False) as tmp:
    (tmp / "a").write_text("1")
  with pytest.raises(io.OutputExistsError, match="--overwrite"):
    with io.atomic_output_dir(out, overwrite=False):
      pass
  with pytest.raises(RuntimeError):
    with io.atomic_output_dir(out, overwrite=True) as tmp:
      (tmp / "b").write_text("2")
      raise RuntimeError("failed half-way")
  assert sorted(p.name for p in out.iterdir()) == ["a"]  # the old one, untouched
  with io.atomic_output_dir(out, overwrite=True) as tmp:
    (tmp / "b").write_text("2")
  assert sorted(p.name for p in out.iterdir()) == ["b"]
  assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # nothing left beside it
