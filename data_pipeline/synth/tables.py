"""The tables of a synthetic data set: the GeneExp-layout CSV/TSV/BED/JSON files and truth/.

EnhancerList.txt (beside the gene table) lists the candidate elements as an ABC run would
nominate them: every accessible element of the landscape, causal or decoy alike (the list
says nothing of which is which), plus each gene's promoter (TSS +- 250 bp), with ABC's
columns chr, start, end, name, class (promoter if within 500 bp of a TSS, genic inside a
gene body, else intergenic), activity_base, H3K27ac.RPM, DHS.RPM. The reads are counted on
the written tracks over each region (coverage / FRAGMENT: the observed, noisy reads, as ABC
counts them, not the landscape's noise-free counts the labels use), per million of the
source tables' reads (as GeneList.txt); activity_base = sqrt(H3K27ac.RPM x DHS.RPM) (ABC's
activity_base_no_qnorm: no quantile normalisation to a reference).

truth/ holds the known answers: causal_elements.bed and decoys.bed (BED6: name =
ENSID:class, score = number of planted units), elements.tsv (every element with its class,
units, real counts, distance, contact and effect on its gene), labels.json (constants, the
standardisation statistics, and per gene the formula's terms, the noise-free and the noisy
label) and README (the formula and the measured noise ceiling).
"""

from __future__ import annotations

import numpy as np

from data_pipeline import io
from data_pipeline import layout as layout_lib
from data_pipeline.readers.bigwig import BigWigTrack
from data_pipeline.synth import dna as dna_lib
from data_pipeline.synth import labels as labels_lib
from data_pipeline.synth import landscape as landscape_lib
from data_pipeline.synth import motifs as motifs_lib
from data_pipeline.synth import signals as signals_lib
from data_pipeline.synth import writer

INCLUDE_HALF = 250  # include list: TSS +- 250 bp (the original's TSS500bp promoter BED)
PROMOTER_NEAR = 500  # ABC's class: "promoter" within 500 bp of a TSS
ENHANCER_COLUMNS = ("chr", "start", "end", "name", "class", "activity_base", "H3K27ac.RPM",
                    "DHS.RPM")
OTHER_CELL = {"K562": "GM12878", "GM12878": "K562"}


def write_all(lay: layout_lib.GeneExpLayout, land: landscape_lib.Landscape, *, cell_type,
              seed, preset_name, preset, label, other_cage, actual, comps, stats, sigma,
              ceiling, distance, rel_contact, effect, unit_sites, blacklist) -> None:
  """Writes every table of the layout and truth/ (arrays are per gene (G,) or per element
  (n,), as computed in build.py)."""
  genes, el = land.genes, land.elements
  io.write_json(lay.chr_length_json, {layout_lib.GENOME: land.chrom_lengths}, indent=1,
                sort_keys=False)
  other = OTHER_CELL[cell_type]
  cage = {cell_type: 10.0 ** label - 1.0, other: 10.0 ** other_cage - 1.0}
  writer.write_table(
      lay.expression_csv,
      ["ENSID", *layout_lib.RNA_FEATURE_COLUMNS, "K562_CAGE_128*3_sum",
       "GM12878_CAGE_128*3_sum", "Actual_K562", "Actual_GM12878"],
      [[g.ensid, *g.rna, cage["K562"][i], cage["GM12878"][i], actual["K562"][i],
        actual["GM12878"][i]] for i, g in enumerate(genes)], sep=",")
  writer.write_table(
      lay.fold_csv,
      ["ENSID", "chrom", *(f"fold_{i}" for i in range(1, 13)), "fold_enformer", "Gene name"],
      [[g.ensid, g.chrom.removeprefix("chr"), *g.folds, g.symbol] for g in genes], sep=",")
  writer.write_table(
      lay.gene_table,
      ["chr", "start", "end", "name", "score", "strand", "tss", "symbol",
       "H3K27ac.RPM.TSS1Kb", "DHS.RPM.TSS1Kb", "gene_name"],
      [[g.chrom, g.start, g.end, g.ensid, 0, g.strand, g.tss, g.ensid, g.h3k27ac_rpm,
        g.dhs_rpm, g.symbol] for g in genes], sep="\t")
  writer.write_table(lay.enhancer_list, ENHANCER_COLUMNS, enhancer_rows(land, lay), sep="\t")
  writer.write_bed_rows(lay.blacklist_bed, blacklist)
  writer.write_bed_rows(lay.includelist_bed, [
      (g.chrom, max(0, g.tss - INCLUDE_HALF),
       min(land.chrom_lengths[g.chrom], g.tss + INCLUDE_HALF))
      for g in genes])

  chrom_of = np.array([genes[i].chrom for i in el.gene])
  ensid_of = np.array([genes[i].ensid for i in el.gene])
  for path, keep in ((lay.causal_bed, el.klass == "causal"), (lay.decoy_bed, el.klass != "causal")):
    writer.write_bed_rows(path, [(chrom_of[e], el.start[e], el.end[e], f"{ensid_of[e]}:{el.klass[e]}",
                             el.units[e], ".") for e in np.flatnonzero(keep)])
  writer.write_table(
      lay.truth_dir / "elements.tsv",
      ["chrom", "start", "end", "ensid", "class", "units", "dhs", "h3k27ac", "distance",
       "contact", "effect", "unit_sites"],
      [[chrom_of[e], el.start[e], el.end[e], ensid_of[e], el.klass[e], el.units[e],
        el.dhs[e], el.h3k27ac[e], float(distance[e]), float(rel_contact[e]), float(effect[e]),
        ";".join(f"{p}:{s}:{k}" for p, s, k in unit_sites[e])] for e in range(len(el.start))],
      sep="\t")
  per_gene = {
      g.ensid: {"drive": float(comps.drive[i]), "promoter": float(comps.promoter[i]),
                "rna": float(comps.rna[i]), "clean": float(comps.clean[i]),
                "label": float(label[i]), "clipped": bool(label[i] == 0.0)}
      for i, g in enumerate(genes)}
  constants = {
      "B0": labels_lib.B0, "W_DRIVE": labels_lib.W_DRIVE,
      "W_PROMOTER": labels_lib.W_PROMOTER, "W_RNA": labels_lib.W_RNA,
      "ACTIVITY_REF": labels_lib.ACTIVITY_REF, "RNA_WEIGHTS": labels_lib.RNA_WEIGHTS.tolist(),
      "NOISE_CEILING_TARGET": labels_lib.NOISE_CEILING, "HIC_SCALE": signals_lib.HIC_SCALE,
      "HIC_D0": signals_lib.HIC_D0, "HIC_GAMMA": signals_lib.HIC_GAMMA}
  io.write_json(lay.truth_dir / "labels.json", {
      "cell_type": cell_type, "seed": seed, "preset": preset_name, "window": preset.window,
      "fold": preset.fold,
      "label_column": lay.cage_column, "noise_sigma": sigma,
      "noise_ceiling_pearson": ceiling, "constants": constants, "stats": stats,
      "genes": per_gene}, indent=1, sort_keys=False)
  counts = {k: int((el.klass == k).sum()) for k in landscape_lib.CLASS_FRACTIONS}
  io.write_text(lay.truth_dir / "README", _readme(
      cell_type=cell_type, seed=seed, preset_name=preset_name, preset=preset,
      n_genes=len(genes), counts=counts, sigma=sigma, ceiling=ceiling, stats=stats,
      label_column=lay.cage_column, other=other))


def enhancer_rows(land: landscape_lib.Landscape, lay: layout_lib.GeneExpLayout) -> list[list]:
  """The EnhancerList.txt rows (module docstring), sorted by chromosome and start; the reads
  of each region are counted on the written bigWigs of `lay`, as ABC counts them."""
  genes, el = land.genes, land.elements
  totals = landscape_lib.read_totals()
  regions = {(g.chrom, max(0, g.tss - INCLUDE_HALF),
              min(land.chrom_lengths[g.chrom], g.tss + INCLUDE_HALF)) for g in genes}
  regions |= {(genes[el.gene[i]].chrom, int(el.start[i]), int(el.end[i]))
              for i in range(len(el.start))}
  body = {c: np.array([(g.tss, g.start, g.end) for g in genes if g.chrom == c])
          for c in land.chrom_lengths}  # (genes on c, 3)
  # mark -> (track, bp covered per read, reads of the source tables)
  tracks = {"H3K27ac": (BigWigTrack(lay.h3k27ac_bigwig), signals_lib.FRAGMENT["h3k27ac"],
                        totals["h3k27ac"]),
            "DHS": (BigWigTrack(lay.dnase_bigwig), signals_lib.FRAGMENT["dnase"],
                    totals["dhs"])}
  out = []
  try:
    for chrom, s, e in sorted(regions, key=lambda r: (landscape_lib.chrom_sort_key(r[0]),
                                                      r[1], r[2])):
      tss, start, end = body[chrom].T
      if np.any((s - PROMOTER_NEAR < tss) & (tss < e + PROMOTER_NEAR)):
        klass = "promoter"
      elif np.any((s < end) & (start < e)):
        klass = "genic"
      else:
        klass = "intergenic"
      rpm = {mark: float(track.window(chrom, s, e).sum(dtype=np.float64)) / fragment
             * 1e6 / total for mark, (track, fragment, total) in tracks.items()}
      out.append([chrom, s, e, f"{klass}|{chrom}:{s}-{e}", klass,
                  float(np.sqrt(rpm["H3K27ac"] * rpm["DHS"])), rpm["H3K27ac"], rpm["DHS"]])
  finally:
    for track, _, _ in tracks.values():
      track.close()
  return out


def _constant_lines() -> str:
  """'- NAME = value' for every constant of the labels and tracks modules."""
  lines = []
  for module in (labels_lib, signals_lib):
    for name in dir(module):
      value = getattr(module, name)
      if name.isupper() and isinstance(value, (int, float, dict, np.ndarray)):
        shown = value.tolist() if isinstance(value, np.ndarray) else value
        lines.append(f"- {module.__name__.rsplit('.', 1)[1]}.{name} = {shown}")
  return "\n".join(lines)


def _readme(*, cell_type, seed, preset_name, preset, n_genes, counts, sigma, ceiling, stats,
            label_column, other) -> str:
  m = motifs_lib.load_motifs()
  motif_lines = "\n".join(f"- {name}: JASPAR {mo.jaspar_id} ({mo.width} bp)"
                          for name, mo in m.items())
  return f"""# Known answers of this synthetic data set

Made by `seq2exp synth --preset {preset_name} --seed {seed} --cell-type {cell_type}`:
{n_genes} genes, window L = {preset.window} bp. Elements: {counts}.

## Files
- causal_elements.bed: elements that drive their gene (BED6; name ENSID:causal, score =
  grammar units). decoys.bed: accessible, acetylated elements with no effect (name
  ENSID:dead|split|insulated).
- elements.tsv: every element with class, units, real DNase/H3K27ac counts, distance to its
  TSS, contact (relative to distance 0; 0 if insulated), effect, and planted unit sites
  (genome start:strand:kind).
- labels.json: constants, standardisation statistics, per-gene terms, noise-free label
  (`clean`) and noisy label (`label` = log10(1 + {label_column})).

## The generating formula
{labels_lib.__doc__.split(chr(10), 2)[2].strip()}

Constants (RNA_WEIGHTS in the order {", ".join(layout_lib.RNA_FEATURE_COLUMNS)}):
{_constant_lines()}
Standardisation statistics: {stats}.

## Noise
sigma = {sigma:.6f}. Noise ceiling (Pearson of the noise-free and the noisy label over all
genes): **{ceiling:.4f}** (target {labels_lib.NOISE_CEILING}). No model can beat it on
average. `{other}_CAGE_128*3_sum` and `Actual_K562`/`Actual_GM12878` are independent noisy
draws of the same noise-free label (only K562 real counts exist; the landscape is shared).

## Motif grammar
{motifs_lib.__doc__.split(chr(10), 2)[2].strip()}

{motif_lines}

Planted sites score >= {motifs_lib.PLANT_MIN_SCORE} of the matrix score range; a scan calls
sites at >= {motifs_lib.SCAN_MIN_SCORE}. Every element is re-drawn until a scan finds exactly
its planted causal units (0 for dead and split decoys). Grammar matches occurring by chance
in non-element background DNA have no effect (they are not accessible).

## Landscape, tracks and masks
{landscape_lib.__doc__.split(chr(10), 2)[2].strip()}

{signals_lib.__doc__.split(chr(10), 2)[2].strip()}

DNA: {dna_lib.__doc__.split(chr(10), 2)[2].strip()} About one soft-masked (lower-case)
100-600 bp stretch per {4000} bp; N runs of 20-300 bp. hg38_blacklist.bed: 200-1500 bp
stretches that never touch an element (causal or decoy; margin 200 bp) or a promoter (TSS
+- 1 kb). N runs avoid the same places. hg38_includelist.bed: TSS +- 250 bp of every gene.
"""
