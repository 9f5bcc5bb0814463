"""TFDS builder of the prepared GeneExp data set: one example per gene (docs/data.md, "The
prepared data set").

The builder reads the GeneExp layout (real or synthetic) once through `readers.WindowReader` and
writes array_record files, which build and read without TensorFlow:

  builder = GeneExp(data_root=ROOT, config=make_config("K562", 200_000), data_dir=OUT,
                    peaks_bed=PEAKS)
  builder.download_and_prepare(download_config=DOWNLOAD_CONFIG)
  tfds.builder_from_directory(builder.data_dir).as_data_source()["train"][0]

Splits train/valid/test come from one fold of the fold CSV (default 11), the target from
the CAGE column (default) or the RNA-seq one (`target='rna'`, name suffix `_rna`; the
metadata records which: keys `target`, `target_column`). `build_atomically`
builds into a sibling temp directory; the data set path (`.../geneexp/<config>/1.0.0`) is
a symlink to the complete build `.1.0.0-v<id>` beside it, swapped by one atomic rename, so a
failed or killed rebuild never leaves a half-written data set nor a moment without one, and
the temporaries of a killed build are removed by the next one.

The data root's chromosome lengths are stored in the data set's metadata.json (key
`chrom_lengths`) and read back with `io.read_chrom_lengths(ds_dir)`, e.g. for bigWig
headers. Every build stores each gene's candidate elements (readers/elements.py; metadata
keys `elements_source`, `elements_file`); a data set built before they existed has no
element features and still reads (`with_elements` False, taken from its features.json).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import re
import shutil
import tempfile

import numpy as np
import tensorflow_datasets as tfds

from data_pipeline.errors import InputError
from data_pipeline import io
from data_pipeline.batch import (ELEMENT_SLOTS, ELEMENT_WIDTH, NUM_ELEMENT_FEATURES,
                                 NUM_RNA_FEATURES, NUM_SIGNALS)
from data_pipeline.layout import CELL_FILES, TARGETS, GeneExpLayout
from data_pipeline.peaks import load_peaks
from data_pipeline.readers.tables import SPLITS, Gene, load_genes
from data_pipeline.readers.window import WindowReader, check_window_length

log = logging.getLogger(__name__)

DEFAULT_FOLD = 11
DEFAULT_TARGET = "cage"
# No statistics pass: it would need TensorFlow and re-reads every example.
DOWNLOAD_CONFIG = tfds.download.DownloadConfig(
    compute_stats=tfds.download.ComputeStatsMode.SKIP)


@dataclasses.dataclass
class GeneExpConfig(tfds.core.BuilderConfig):
  """One cell type, window length, fold and target ('cage' or 'rna'); `with_truth` for
  synthetic data sets; `with_elements` False only to read a data set built without them."""

  cell_type: str = "K562"
  window: int = 200_000
  fold: int | str = DEFAULT_FOLD
  with_truth: bool = False
  target: str = DEFAULT_TARGET
  with_elements: bool = True


def config_name(cell_type: str, window: int, fold: int | str = DEFAULT_FOLD,
                target: str = DEFAULT_TARGET) -> str:
  """`<cell>_<window>[_fold<k>][_rna]`: the default fold (11) and target (cage) unnamed."""
  name = f"{cell_type.lower()}_{window}"
  name = name if str(fold) == str(DEFAULT_FOLD) else f"{name}_fold{fold}"
  return name if target == DEFAULT_TARGET else f"{name}_{target}"


def make_config(cell_type: str, window: int, fold: int | str = DEFAULT_FOLD,
                with_truth: bool = False, target: str = DEFAULT_TARGET,
                name: str | None = None, with_elements: bool = True) -> GeneExpConfig:
  """The config of one data set; `name` (default `config_name`) names its directory."""
  if cell_type not in CELL_FILES:
    raise InputError(f"unknown cell type {cell_type!r}: expected one of {sorted(CELL_FILES)}")
  if target not in TARGETS:
    raise InputError(f"unknown target {target!r}: expected one of {list(TARGETS)}")
  check_window_length(window)
  label = "log10(1 + CAGE)" if target == "cage" else "RNA-seq (Actual_<cell>, as stored)"
  return GeneExpConfig(
      name=name or config_name(cell_type, window, fold, target), cell_type=cell_type,
      window=window, fold=fold, with_truth=with_truth, target=target,
      with_elements=with_elements,
      description=f"{cell_type}, {window} bp windows centred on the TSS, fold_{fold} split, "
                  f"target {label}" + (", synthetic with ground truth" if with_truth else ""))


def config_from_name(name: str, data_dir: str | os.PathLike | None) -> GeneExpConfig:
  """Parses `<cell>_<window>[_fold<k>][_rna]` (the config keeps `name`, so `_fold11` names
  fold 11 too); `with_truth` and `with_elements` from the prepared files if present."""
  m = re.fullmatch(r"([a-z0-9]+)_(\d+)(?:_fold([a-z0-9]+))?(?:_(rna))?", name)
  cells = {c.lower(): c for c in CELL_FILES}
  if m is None or m.group(1) not in cells:
    raise InputError(f"GeneExp config {name!r}: expected <cell>_<window>[_fold<k>][_rna] "
                     f"with cell in {sorted(cells)}")
  fold = m.group(3) or DEFAULT_FOLD
  fold = int(fold) if str(fold).isdigit() else fold
  with_truth, with_elements = False, True
  if data_dir is not None:
    stored = pathlib.Path(data_dir) / GeneExp.name / name / str(GeneExp.VERSION)
    features_json = stored / "features.json"
    if features_json.is_file():
      text = features_json.read_text()
      with_truth, with_elements = '"truth"' in text, '"element_dna"' in text
  return make_config(cells[m.group(1)], int(m.group(2)), fold, with_truth,
                     m.group(4) or DEFAULT_TARGET, name=name, with_elements=with_elements)


def features(window: int, with_truth: bool,
             with_elements: bool = True) -> tfds.features.FeaturesDict:
  """The feature spec. Large per-base arrays are stored as raw bytes (fast to decode)."""
  raw = tfds.features.Encoding.BYTES

  def per_base(dtype, shape=()):
    return tfds.features.Tensor(shape=(window,) + shape, dtype=dtype, encoding=raw)

  def per_element(dtype, shape=()):
    return tfds.features.Tensor(shape=(ELEMENT_SLOTS,) + shape, dtype=dtype, encoding=raw)

  spec = {
      "dna": per_base(np.uint8),  # A=0 C=1 G=2 T=3 N=4
      "signals": per_base(np.float32, (NUM_SIGNALS,)),  # H3K27ac, DNase, log10(1 + Hi-C)
      "blacklist": per_base(np.bool_),
      "includelist": per_base(np.bool_),
      "peaks": per_base(np.bool_),  # MACS3 bdgpeakcall on DNase
      "rna_feat": tfds.features.Tensor(shape=(NUM_RNA_FEATURES,), dtype=np.float32),
      "target": tfds.features.Scalar(dtype=np.float32),  # log10(1 + CAGE), or RNA-seq
      "ensid": tfds.features.Text(),
      "chrom": tfds.features.Text(),
      "tss": tfds.features.Scalar(dtype=np.int64),
  }
  if with_truth:
    spec["truth"] = per_base(np.uint8)  # 1 causal, 2 decoy, 0 other
  if with_elements:  # slot 0 the promoter, then the nearest candidates (readers/elements.py)
    spec.update(element_dna=per_element(np.uint8, (ELEMENT_WIDTH,)),  # codes as dna
                element_feat=per_element(np.float32, (NUM_ELEMENT_FEATURES,)),
                element_valid=per_element(np.bool_),
                element_pos=per_element(np.int64, (2,)))  # [start, end), -1 when empty
  return tfds.features.FeaturesDict(spec)


class GeneExp(tfds.core.GeneratorBasedBuilder):
  """Seq2Exp gene-expression windows from a GeneExp-layout data root."""

  name = "geneexp"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  # Configs are made per build (`make_config`) or parsed from a name (`config_from_name`):
  # any cell type x window x fold, with or without the synthetic truth feature.
  BUILDER_CONFIGS: list[GeneExpConfig] = []

  def __init__(self, *, data_root: str | os.PathLike | None = None,
               peaks_bed: str | os.PathLike | None = None, allow_pickle: bool = False,
               **kwargs):
    """data_root: the GeneExp layout to read (only needed to build); peaks_bed: MACS3 DNase
    peaks of that root (see `peaks.call_dnase_peaks`); allow_pickle: read mask pickles."""
    self._data_root = None if data_root is None else pathlib.Path(data_root)
    self._peaks_bed = None if peaks_bed is None else pathlib.Path(peaks_bed)
    self._allow_pickle = allow_pickle
    kwargs.setdefault("file_format", "array_record")
    config = kwargs.get("config")
    if isinstance(config, str):
      # A config built earlier, e.g. `tfds.data_source("geneexp/k562_1000", data_dir=OUT)`:
      # rebuild its config from the name and the prepared files.
      kwargs["config"] = config_from_name(config, kwargs.get("data_dir"))
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=(__doc__.splitlines()[0] + " Features: dna uint8 (L,), signals float32 "
                     "(L, 3), blacklist/includelist/peaks bool (L,), rna_feat float32 (9,), "
                     "target float32, ensid/chrom text, tss int64"
                     + (", truth uint8 (L,)" if cfg.with_truth else "")
                     + (", element_dna uint8 (61, 2000), element_feat float32 (61, 3), "
                        "element_valid bool (61,), element_pos int64 (61, 2)."
                        if cfg.with_elements else ".")),
        features=features(cfg.window, cfg.with_truth, cfg.with_elements),
        homepage="https://arxiv.org/abs/2502.13991",
        # Keep the fold CSV's gene order on disk; the loader shuffles from its own seed.
        disable_shuffling=True,
        # Filled when building (`_split_generators`); saved as metadata.json.
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # everything is local
    if self._data_root is None or self._peaks_bed is None:
      raise ValueError("GeneExp needs data_root= and peaks_bed= to build the data set")
    cfg = self.builder_config
    layout = GeneExpLayout(self._data_root, cfg.cell_type)
    genes = load_genes(layout, cfg.fold, cfg.target)
    self.info.metadata[io.CHROM_LENGTHS_KEY] = io.read_chrom_lengths(layout.chr_length_json)
    self.info.metadata.update(target=cfg.target, target_column=layout.target_column(cfg.target),
                              fold=str(cfg.fold))
    reader = WindowReader(layout, cfg.window, peaks=load_peaks(self._peaks_bed),
                          allow_pickle=self._allow_pickle, with_truth=cfg.with_truth,
                          elements=cfg.with_elements)
    if reader.elements is not None:
      # The file relative to the data root (the peaks BED: its name beside the data set).
      path, root = reader.elements.candidates.path.resolve(), self._data_root.resolve()
      self.info.metadata.update(
          elements_source=reader.elements.candidates.source,
          elements_file=str(path.relative_to(root)) if path.is_relative_to(root) else path.name)
    # Check every gene before writing anything: bad input fails fast and whole.
    for split_genes in genes.splits.values():
      for gene in split_genes:
        reader.check(gene)
    generators = {}
    for split in SPLITS:
      if genes.splits[split]:
        generators[split] = self._generate_examples(reader, genes.splits[split])
      else:
        log.warning("split %r of fold %s is empty; it is left out", split, cfg.fold)
    return generators

  def _generate_examples(self, reader: WindowReader, genes: list[Gene]):
    for gene in genes:
      yield gene.ensid, reader.read(gene)


# array_record writer options by name. TFDS writes zstd-compressed records; reading 200 kb
# windows is then bound by decompression (~3.4 MB per example), so the default rewrites them
# uncompressed: ~3x faster reads for ~14x the disk on synthetic data (less on real tracks).
COMPRESSION = {"none": "group_size:1,uncompressed", "zstd": "group_size:1,zstd:3"}


def rewrite_records(dataset: pathlib.Path, compression: str) -> None:
  """Rewrites every array_record file of `dataset` with `COMPRESSION[compression]`."""
  from array_record.python import array_record_module  # pylint: disable=import-outside-toplevel
  if compression not in COMPRESSION:
    raise InputError(f"compression {compression!r}: expected one of {sorted(COMPRESSION)}")
  for path in sorted(dataset.glob("*.array_record-*")):
    reader = array_record_module.ArrayRecordReader(str(path))
    tmp = path.with_name(path.name + ".rewrite")
    writer = array_record_module.ArrayRecordWriter(str(tmp), COMPRESSION[compression])
    for i in range(reader.num_records()):
      writer.write(reader.read([i])[0])
    n = reader.num_records()
    writer.close()
    reader.close()
    check = array_record_module.ArrayRecordReader(str(tmp))
    if check.num_records() != n:
      raise RuntimeError(f"{tmp}: rewrote {check.num_records()} of {n} records")
    check.close()
    os.replace(tmp, path)


def dataset_dir(out_dir: str | os.PathLike, config: GeneExpConfig) -> pathlib.Path:
  """Where the prepared data set of `config` lives under a TFDS data_dir `out_dir`."""
  return pathlib.Path(out_dir) / GeneExp.name / config.name / str(GeneExp.VERSION)


def build_atomically(data_root: str | os.PathLike, out_dir: str | os.PathLike,
                     config: GeneExpConfig, peaks_bed: str | os.PathLike,
                     allow_pickle: bool = False,
                     extra_files: dict[str, pathlib.Path] | None = None,
                     compression: str = "none") -> pathlib.Path:
  """Builds the data set into a temp dir beside `out_dir/geneexp/<config>/<version>` and
  renames it into place, replacing an old build only once the new one is complete.

  `compression` is a key of COMPRESSION. `extra_files` {name: path} are copied into the data
  set directory (e.g. the peaks BED).
  Returns the data set directory (readable by `tfds.builder_from_directory`).
  """
  final = dataset_dir(out_dir, config)
  final.parent.mkdir(parents=True, exist_ok=True)
  current = {final.resolve()} if final.is_symlink() else set()
  for prefix in (".build-", f".{final.name}-v", f".{final.name}.link-"):
    for path in io.clean_stale(final.parent, prefix, keep=current):
      log.info("removed %s, left behind by a build that was killed", path)
  tmp_root = pathlib.Path(tempfile.mkdtemp(prefix=f".build-{config.name}-", dir=final.parent))
  io.mark_owner(tmp_root)
  try:
    builder = GeneExp(data_root=data_root, peaks_bed=peaks_bed, allow_pickle=allow_pickle,
                      config=config, data_dir=tmp_root)
    builder.download_and_prepare(download_config=DOWNLOAD_CONFIG)
    built = pathlib.Path(builder.data_dir)
    rewrite_records(built, compression)
    for name, path in (extra_files or {}).items():
      shutil.copyfile(path, built / name)
    io.mark_owner(built)  # a build running beside this one must not take it for stale
    version = io.swap_in_versioned(built, final)
    (version / io.OWNER_FILE).unlink()
  finally:
    shutil.rmtree(tmp_root, ignore_errors=True)
  return final
