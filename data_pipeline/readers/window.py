"""One training example per gene, read straight from the GeneExp layout (docs/data.md,
"Windows and features").

`WindowReader` opens every file once and returns, for a gene, a dict of numpy arrays with the
feature names of the prepared data set. It is what the TFDS builder writes and what the
original code did per item at training time (the loader benchmark compares the two).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from data_pipeline.layout import GeneExpLayout
from data_pipeline.errors import DataFormatError, InputError
from data_pipeline.batch import NUM_SIGNALS
from data_pipeline.io import check_same_lengths, read_chrom_lengths
from data_pipeline.readers.elements import ElementReader, load_candidates
from data_pipeline.readers.genome import Genome
from data_pipeline.readers.hic import HicReader
from data_pipeline.readers.masks import IntervalMask, load_mask
from data_pipeline.readers.tables import Gene
from data_pipeline.readers.bigwig import BigWigTrack

log = logging.getLogger(__name__)


def check_window_length(window: int) -> int:
  """Returns `window` if it is a positive even number of bases, else raises ValueError."""
  if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window <= 0:
    raise InputError(f"window length {window!r}: expected a positive integer")
  if window % 2:
    raise InputError(f"window length {window}: must be divisible by 2 (the window is "
                     "[tss - L/2, tss + L/2), with the TSS at index L/2)")
  return int(window)


class WindowReader:
  """Reads the window [tss - L/2, tss + L/2) of each gene from FASTA, bigWig, HDF5 and BED.

  Example dict (L = window):
    dna: uint8 (L,) codes A=0 C=1 G=2 T=3 N=4 (N beyond the chromosome ends)
    signals: float32 (L, 3) H3K27ac, DNase, log10(1 + Hi-C); NaN and out-of-chromosome 0
    blacklist, includelist: bool (L,)
    peaks: bool (L,) MACS3 DNase peaks (only when `peaks` is given)
    truth: uint8 (L,) 1 causal / 2 decoy / 0 other (only for synthetic data sets)
    element_dna uint8 (M, W), element_feat float32 (M, G), element_valid bool (M,),
      element_pos int64 (M, 2): the candidate elements (only with `elements=True`;
      readers/elements.py: ABC's EnhancerList.txt if present, else `peaks`)
    rna_feat: float32 (9,); target: float32 (); ensid, chrom: str; tss: int64 ()
  """

  def __init__(self, layout: GeneExpLayout, window: int, *, peaks: IntervalMask | None = None,
               allow_pickle: bool = False, with_truth: bool | None = None,
               elements: bool = False):
    self.layout = layout
    self.window = check_window_length(window)
    self.chrom_lengths = read_chrom_lengths(layout.chr_length_json)
    self.genome = Genome(layout.fasta)
    self.h3k27ac = BigWigTrack(layout.h3k27ac_bigwig)
    self.dnase = BigWigTrack(layout.dnase_bigwig)
    # Files that must describe the same genome, checked against each other up front.
    self.genome.check_lengths(self.chrom_lengths, layout.chr_length_json)
    for track in (self.h3k27ac, self.dnase):
      check_same_lengths(self.chrom_lengths, layout.chr_length_json, track.lengths, track.path)
    self.hic = HicReader(layout.hic_dir)
    self.blacklist = load_mask(layout.blacklist_bed, layout.blacklist_pickle, allow_pickle)
    self.includelist = load_mask(layout.includelist_bed, layout.includelist_pickle,
                                 allow_pickle)
    self.peaks = peaks
    self.elements = None
    if elements:
      candidates = load_candidates(layout, peaks, self.h3k27ac, self.dnase)
      self.elements = ElementReader(candidates, self.genome, self.hic, self.chrom_lengths)
    self.with_truth = layout.truth_dir.is_dir() if with_truth is None else with_truth
    self._read_truth = None
    if self.with_truth:
      from data_pipeline.truth import read_truth  # pylint: disable=import-outside-toplevel
      self._read_truth = read_truth

  def check(self, gene: Gene) -> None:
    """Raises a clear error if `gene` cannot be read (unknown chromosome, TSS outside it)."""
    length = self.chrom_lengths.get(gene.chrom)
    if length is None:
      raise DataFormatError(f"{self.layout.chr_length_json}: no length for {gene.chrom!r}, "
                            f"which the gene table names for {gene.ensid}")
    if not 0 <= gene.tss < length:
      raise DataFormatError(
          f"{self.layout.gene_table}: gene {gene.ensid} has TSS {gene.tss} outside "
          f"{gene.chrom} (length {length} in {self.layout.chr_length_json.name})")
    self.genome.require(gene.chrom)
    self.h3k27ac.require(gene.chrom)
    self.dnase.require(gene.chrom)
    self.hic.require(gene.chrom, gene.tss)

  def interval(self, gene: Gene) -> tuple[int, int]:
    """The window [start, end) of `gene`; may reach beyond the chromosome ends."""
    return gene.tss - self.window // 2, gene.tss + self.window // 2

  def read(self, gene: Gene) -> dict[str, Any]:
    """Returns the example dict of `gene` (see the class docstring)."""
    self.check(gene)
    start, end = self.interval(gene)
    length = self.chrom_lengths[gene.chrom]
    signals = np.empty((self.window, NUM_SIGNALS), dtype=np.float32)
    signals[:, 0] = self.h3k27ac.window(gene.chrom, start, end)
    signals[:, 1] = self.dnase.window(gene.chrom, start, end)
    signals[:, 2] = self.hic.window(gene.chrom, gene.tss, start, end, length)
    example = {
        "dna": self.genome.window(gene.chrom, start, end),
        "signals": signals,
        "blacklist": self.blacklist.window(gene.chrom, start, end),
        "includelist": self.includelist.window(gene.chrom, start, end),
        "rna_feat": np.asarray(gene.rna_feat, dtype=np.float32),
        "target": np.float32(gene.target),
        "ensid": gene.ensid,
        "chrom": gene.chrom,
        "tss": np.int64(gene.tss),
    }
    if self.peaks is not None:
      example["peaks"] = self.peaks.window(gene.chrom, start, end)
    if self._read_truth is not None:
      truth = np.zeros(self.window, dtype=np.uint8)
      lo, hi = max(start, 0), min(end, length)
      truth[lo - start:hi - start] = self._read_truth(self.layout, gene.chrom, lo, hi)
      example["truth"] = truth
    if self.elements is not None:
      example.update(self.elements.read(gene))
    return example

  def close(self) -> None:
    for r in (self.genome, self.h3k27ac, self.dnase, self.hic):
      r.close()

  def __enter__(self) -> "WindowReader":
    return self

  def __exit__(self, *exc) -> None:
    self.close()
