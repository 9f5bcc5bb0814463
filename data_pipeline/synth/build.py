"""Builds one synthetic GeneExp data set: landscape -> labels -> DNA, tracks, Hi-C -> files.

`build()` is what `seq2exp synth` runs. Randomness comes from one seed split into
independent streams (landscape, labels, each chromosome, each gene), so the same seed gives
byte-identical files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib

import numpy as np
from tqdm import tqdm

from data_pipeline import io
from data_pipeline import layout as layout_lib
from data_pipeline.synth import dna as dna_lib
from data_pipeline.synth import labels as labels_lib
from data_pipeline.synth import landscape as landscape_lib
from data_pipeline.synth import motifs as motifs_lib
from data_pipeline.synth import signals as signals_lib
from data_pipeline.synth import tables
from data_pipeline.synth import writer
from data_pipeline.synth.presets import Preset

PLANT_TRIES = 20
# Masks: forbidden margins (bp) around elements and promoters for N runs and blacklist.
ELEMENT_MARGIN, PROMOTER_MARGIN = 200, 1_000
N_RUN_EVERY, BLACKLIST_EVERY, REPEAT_EVERY = 50_000, 30_000, 4_000
UNIT_KIND = {"causal": "causal", "insulated": "causal", "dead": "dead", "split": "split"}


@dataclasses.dataclass(frozen=True)
class Summary:
  out: pathlib.Path
  n_genes: int
  n_elements: dict[str, int]
  genome_bp: int
  noise_sigma: float
  noise_ceiling_pearson: float


def _stream(seed: int, *keys: int) -> np.random.Generator:
  return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def _plant(rng: np.random.Generator, dna: np.ndarray, start: int, end: int, klass: str,
           units: int) -> list[tuple[int, str, str]]:
  """Plants `units` units of the class's kind in dna[start:end] (redrawing the element's
  background until a scan finds exactly the planted causal grammar); returns the unit sites
  as (genome start, strand, kind)."""
  kind = UNIT_KIND[klass]
  expected = units if kind == "causal" else 0
  slot = (end - start) // units
  for _ in range(PLANT_TRIES):
    dna[start:end] = dna_lib.background(rng, end - start)
    sites = []
    for u in range(units):
      unit, strand = motifs_lib.sample_unit(rng, kind, dna_lib.background(rng, 64))
      lo = start + u * slot + 5
      hi = start + (u + 1) * slot - len(unit) - 5
      if hi <= lo:
        raise ValueError(f"element [{start}, {end}) too short for {units} units")
      pos = int(rng.integers(lo, hi))
      dna[pos:pos + len(unit)] = unit
      sites.append((pos, strand, kind))
    if len(motifs_lib.find_grammar(dna[start:end])) == expected:
      return sites
  raise RuntimeError(f"could not plant a clean {klass} element at [{start}, {end})")


def _write_chromosome(seed: int, ci: int, chrom: str, land: landscape_lib.Landscape,
                      lay: layout_lib.GeneExpLayout, fasta: writer.FastaWriter,
                      bigwigs: dict[str, writer.BigWigWriter],
                      unit_sites: list[list[tuple[int, str, str]]]) -> list[tuple[str, int, int]]:
  """Draws chromosome `chrom` (DNA with planted elements, masks, tracks, Hi-C of its genes),
  streams it into the writers, fills `unit_sites` of its elements; returns its blacklist."""
  rng = _stream(seed, 2, ci)
  genes, el = land.genes, land.elements
  length = land.chrom_lengths[chrom]
  gi = [i for i, g in enumerate(genes) if g.chrom == chrom]
  ei = np.flatnonzero(np.isin(el.gene, gi))
  seq = dna_lib.background(rng, length)
  forbidden = np.zeros(length, bool)
  for i in gi:
    tss = genes[i].tss
    lo, hi = max(0, tss - dna_lib.ISLAND_HALF), min(length, tss + dna_lib.ISLAND_HALF)
    seq[lo:hi] = dna_lib.cpg_island(rng, hi - lo)
    forbidden[max(0, tss - PROMOTER_MARGIN):tss + PROMOTER_MARGIN] = True
  for e in ei:
    unit_sites[e] = _plant(rng, seq, int(el.start[e]), int(el.end[e]), str(el.klass[e]),
                           int(el.units[e]))
    forbidden[max(0, el.start[e] - ELEMENT_MARGIN):el.end[e] + ELEMENT_MARGIN] = True
  # N runs and blacklisted stretches never touch an element or a promoter.
  for s, e in dna_lib.random_intervals(rng, length, max(1, length // N_RUN_EVERY), 20, 300,
                                       forbidden):
    seq[s:e] = 4
  blacklist = [(chrom, s, e) for s, e in dna_lib.random_intervals(
      rng, length, max(1, length // BLACKLIST_EVERY), 200, 1_500, forbidden)]
  soft = np.zeros(length, bool)
  for s, e in dna_lib.random_intervals(rng, length, length // REPEAT_EVERY, 100, 600,
                                       np.zeros(length, bool)):
    soft[s:e] = True
  fasta.add(chrom, dna_lib.to_fasta_bytes(seq, soft))
  centres = np.concatenate([(el.start[ei] + el.end[ei]) / 2, [genes[i].tss for i in gi]])
  for track, bw in bigwigs.items():
    counts = np.concatenate([el.dhs[ei], [genes[i].dhs_tss1kb for i in gi]]
                            if track == "dnase" else
                            [el.h3k27ac[ei], [genes[i].h3k27ac_tss1kb for i in gi]])
    bw.add(chrom, signals_lib.coverage(rng, length, track, centres, counts))
  hic = {}
  for i in gi:
    insulated = [(int(el.start[e]), int(el.end[e])) for e in ei
                 if el.gene[e] == i and el.klass[e] == "insulated"]
    hic[f"{chrom}_{genes[i].tss}"] = signals_lib.hic_vector(
        _stream(seed, 3, i), land.window, genes[i].tss, length, insulated)
  writer.write_hic(lay.hic_file(chrom), hic)
  return blacklist


def build(out: pathlib.Path, preset: Preset, seed: int, cell_type: str = "K562",
          overwrite: bool = False, progress: bool = True, preset_name: str = "custom"
          ) -> Summary:
  """Writes the GeneExp layout plus truth/ for one cell type into `out` (atomically)."""
  layout_lib.GeneExpLayout(out, cell_type)  # validates the cell type before any work
  rng = _stream(seed, 0)
  rows = landscape_lib.choose_genes(rng, preset.n_genes, preset.window, preset.min_elements,
                                    preset.chroms, preset.fold, preset.shares)
  land = landscape_lib.lay_out(rng, rows, preset.window)
  genes, el = land.genes, land.elements
  tss = np.array([g.tss for g in genes])
  distance = (el.start + el.end) / 2 - tss[el.gene]
  rel_contact = np.where(el.klass == "insulated", 0.0,
                         signals_lib.contact(distance) / signals_lib.HIC_SCALE)
  effect = labels_lib.element_effect(el.klass, el.units, el.dhs, el.h3k27ac, rel_contact)
  rna = np.array([[float(v) for v in g.rna] for g in genes])
  comps, stats = labels_lib.components(
      effect, el.gene, len(genes), np.array([g.h3k27ac_rpm for g in genes]),
      np.array([g.dhs_rpm for g in genes]), rna)
  sigma = labels_lib.noise_sigma(comps.clean)
  label_rng = _stream(seed, 1)
  label = labels_lib.noisy(comps.clean, sigma, label_rng)
  # Other columns of the expression CSV: independent noisy draws of the same clean label.
  other_cage = labels_lib.noisy(comps.clean, sigma, label_rng)
  actual = {c: labels_lib.noisy(comps.clean, sigma, label_rng) for c in ("K562", "GM12878")}
  ceiling = float(np.corrcoef(comps.clean, label)[0, 1])

  with io.atomic_output_dir(out, overwrite) as tmp:
    lay = layout_lib.GeneExpLayout(tmp, cell_type)
    unit_sites: list[list[tuple[int, str, str]]] = [[] for _ in range(len(el.start))]
    blacklist: list[tuple[str, int, int]] = []
    with contextlib.ExitStack() as stack:  # closes the writers, also on failure
      fasta = stack.enter_context(writer.FastaWriter(lay.fasta))
      bigwigs = {t: stack.enter_context(writer.BigWigWriter(p, land.chrom_lengths,
                                                            signals_lib.BIN))
                 for t, p in (("dnase", lay.dnase_bigwig), ("h3k27ac", lay.h3k27ac_bigwig))}
      for ci, chrom in enumerate(tqdm(list(land.chrom_lengths), desc="synth chromosomes",
                                      disable=not progress)):
        blacklist += _write_chromosome(seed, ci, chrom, land, lay, fasta, bigwigs, unit_sites)
    tables.write_all(
        lay, land, cell_type=cell_type, seed=seed, preset_name=preset_name, preset=preset,
        label=label, other_cage=other_cage, actual=actual, comps=comps, stats=stats,
        sigma=sigma, ceiling=ceiling, distance=distance, rel_contact=rel_contact,
        effect=effect, unit_sites=unit_sites, blacklist=blacklist)
  counts = {k: int((el.klass == k).sum()) for k in landscape_lib.CLASS_FRACTIONS}
  return Summary(pathlib.Path(out), len(genes), counts, sum(land.chrom_lengths.values()),
                 sigma, ceiling)
