"""`seq2exp build-data`: turn a GeneExp-layout data root into the prepared TFDS data set.

  seq2exp build-data --data-root DIR --cell-type K562 --window 200000 --fold 11 --out TFDS_DIR
                     [--target cage|rna]

Steps: read and check the gene tables (bad rows stop the build before anything is written),
call MACS3 peaks on the DNase track once, then write one example per gene into
`TFDS_DIR/geneexp/<cell>_<window>[_fold<k>][_rna]/1.0.0/` (array_record), built in a temp
directory and renamed into place. The target is log10(1 + <cell>_CAGE_128*3_sum) (cage) or
the RNA-seq column Actual_<cell> as stored (rna; docs/data.md). The peaks BED is kept beside
the data set as `macs3_dnase_peaks.narrowPeak`. `build` does the same for a caller (ablate's
per-fold data sets).
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import tempfile
from typing import Any

log = logging.getLogger("seq2exp.build_data")

PEAKS_FILE = "macs3_dnase_peaks.narrowPeak"


def add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--data-root", required=True, type=pathlib.Path,
                      help="root of the GeneExp layout (real download or `seq2exp synth`)")
  parser.add_argument("--cell-type", default="K562", choices=["K562", "GM12878"])
  parser.add_argument("--window", type=int, default=200_000,
                      help="window length L in bp, even; the window is [tss-L/2, tss+L/2)")
  parser.add_argument("--fold", default="11",
                      help="fold of the leave-chromosome-out CSV for the splits (1..12 or "
                           "'enformer')")
  parser.add_argument("--target", default="cage", choices=["cage", "rna"],
                      help="expression label: cage = log10(1 + <cell>_CAGE_128*3_sum) (the "
                           "paper's), rna = the RNA-seq column Actual_<cell> as stored "
                           "(already log-scale)")
  parser.add_argument("--out", required=True, type=pathlib.Path,
                      help="TFDS data_dir to write into")
  parser.add_argument("--allow-pickle", action="store_true",
                      help="read blacklist/include-list pickles when no BED file exists "
                           "(unpickling runs code stored in the file: only for files you "
                           "trust)")
  parser.add_argument("--compression", default="none", choices=["none", "zstd"],
                      help="record compression: none reads ~3x faster (the loader's 200 "
                           "windows/s needs it on 2 cores); zstd takes several times less "
                           "disk")
  peaks = parser.add_argument_group("MACS3 bdgpeakcall on the DNase track")
  peaks.add_argument("--peak-cutoff", type=float, default=None,
                     help="absolute signal cutoff (default: --peak-fold x the mean signal)")
  peaks.add_argument("--peak-fold", type=float, default=3.0)
  peaks.add_argument("--peak-min-length", type=int, default=200)
  peaks.add_argument("--peak-max-gap", type=int, default=30)


def run(args: argparse.Namespace) -> int:
  logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
  logging.getLogger("absl").setLevel(logging.WARNING)  # TFDS's per-shard chatter
  from data_pipeline import peaks  # pylint: disable=import-outside-toplevel
  fold = int(args.fold) if str(args.fold).isdigit() else args.fold
  params = peaks.PeakParams(args.peak_cutoff, args.peak_fold, args.peak_min_length,
                            args.peak_max_gap)
  final, counts = build(args.data_root, args.out, cell_type=args.cell_type, window=args.window,
                        fold=fold, target=args.target, allow_pickle=args.allow_pickle,
                        compression=args.compression, peak_params=params)
  print(f"prepared data set: {final}  (splits {counts}; read it with "
        f"tfds.builder_from_directory('{final}').as_data_source())")
  return 0


def build(data_root: pathlib.Path, out: pathlib.Path, *, cell_type: str, window: int,
          fold: int | str, target: str = "cage", name: str | None = None,
          allow_pickle: bool = False, compression: str = "none",
          peak_params: Any = None) -> tuple[pathlib.Path, dict]:
  """Builds one data set into the TFDS data_dir `out` (as `seq2exp build-data`); `name`
  overrides its directory name, `peak_params` (a peaks.PeakParams) the MACS3 defaults.
  Returns (data set directory, genes per split)."""
  # Heavy imports only when the command runs.
  from data_pipeline import io, peaks, tfds_builder  # pylint: disable=import-outside-toplevel
  from data_pipeline.layout import GeneExpLayout  # pylint: disable=import-outside-toplevel
  from data_pipeline.errors import MissingInputError  # pylint: disable=import-outside-toplevel
  from data_pipeline.readers.tables import load_genes  # pylint: disable=import-outside-toplevel

  data_root, out = pathlib.Path(data_root), pathlib.Path(out)
  if not data_root.is_dir():
    raise MissingInputError(f"{data_root}: data root directory not found")
  layout = GeneExpLayout(data_root, cell_type)
  config = tfds_builder.make_config(cell_type, window, fold,
                                    with_truth=layout.truth_dir.is_dir(), target=target,
                                    name=name)
  genes = load_genes(layout, fold, target)
  counts = {s: len(g) for s, g in genes.splits.items()}
  log.info("genes per split (fold %s, target %s): %s; skipped: %s", fold, target, counts,
           genes.skipped)
  chroms = sorted({g.chrom for split in genes.splits.values() for g in split})
  out.mkdir(parents=True, exist_ok=True)
  io.clean_stale(out, ".peaks-")  # left behind by a build that was killed
  with tempfile.TemporaryDirectory(dir=out, prefix=".peaks-") as tmp:
    io.mark_owner(pathlib.Path(tmp))
    bed = pathlib.Path(tmp) / PEAKS_FILE
    params = peak_params or peaks.PeakParams()
    cutoff = peaks.call_dnase_peaks(layout.dnase_bigwig, chroms, bed, params)
    n_peaks = sum(1 for _ in bed.open())
    log.info("MACS3 bdgpeakcall: %d DNase peaks (cutoff %.4g, min length %d, max gap %d)",
             n_peaks, cutoff, params.min_length, params.max_gap)
    final = tfds_builder.build_atomically(data_root, out, config, bed,
                                          allow_pickle=allow_pickle,
                                          extra_files={PEAKS_FILE: bed},
                                          compression=compression)
  return final, counts
