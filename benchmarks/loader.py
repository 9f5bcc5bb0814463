"""Loader benchmark: 200 kb windows per second from the prepared data set (ShardedLoader) vs
building every window per item from FASTA + bigWig + HDF5 + BED, side by side on the same
synthetic data. Two per-item baselines:

* "original access pattern": what the original code's `ExperInteractDataset.__getitem__`
  does per window (read for reference from divelab/AIRS OpenBio/Seq2Exp, re-expressed here):
  the FASTA window as a string one-hot encoded base by base through a dict, each bigWig
  read with `values()` as a Python list padded with list concatenation, the Hi-C vector
  sliced from HDF5 and padded, and the masks sliced from per-base arrays (the original
  unpickles them once; here they are built once from the BED files). The original also
  reads its MACS3 peaks from a bigWig per window; here they come from per-base arrays built
  once, which favours this baseline. Upper-casing the soft-masked synthetic FASTA is the only
  work added.
* "our WindowReader": the same per-item reading vectorised (numpy bigWig reads, table
  one-hot), as `seq2exp build-data` uses it.

  .venv/bin/python benchmarks/loader.py                # synth 64 genes x 200 kb, build, time
  .venv/bin/python benchmarks/loader.py --work runs/bench_loader --steps 40

Each path is timed twice: "host" stops at the numpy batch (what reading costs), "device" goes
on to the global batch of jax.Arrays on the default mesh with dna one-hot on device, every
array ready (`block_until_ready`). On the CPU backend the "device" work runs on the same
cores as the reading, so the host rates are the fairer measure of the data path itself. Data are generated once into
--work (default: a temp dir) with `seq2exp synth --preset tiny --window 200000 --genes 64`
and `seq2exp build-data`; nothing is written into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

import jax
import numpy as np

from data_pipeline.layout import GeneExpLayout
from data_pipeline.loader import ShardedLoader
from data_pipeline.peaks import load_peaks
from data_pipeline.readers.tables import load_genes
from data_pipeline.readers.window import WindowReader
from seq2exp_jax.cli import main as seq2exp


def prepare(work: pathlib.Path, genes: int, window: int) -> tuple[pathlib.Path, pathlib.Path]:
  """(data root, prepared data set dir), generated under `work` unless already there."""
  root, out = work / "root", work / "tfds"
  ds_dir = out / "geneexp" / f"k562_{window}" / "1.0.0"
  if not root.is_dir():
    assert seq2exp(["synth", "--out", str(root), "--preset", "tiny", "--window", str(window),
                    "--genes", str(genes), "--seed", "0", "--quiet"]) == 0
  if not (ds_dir / "dataset_info.json").is_file():
    assert seq2exp(["build-data", "--data-root", str(root), "--window", str(window),
                    "--out", str(out)]) == 0
  return root, ds_dir


def ready(batch) -> None:
  """Waits for every array of a host dict or a global Batch."""
  for v in jax.tree.leaves(batch):
    if isinstance(v, jax.Array):
      v.block_until_ready()


REPEATS = 3  # the machine is shared: report the median of a few timed runs


def rate(batches, steps: int, batch: int, finish=lambda b: None) -> float:
  """Median windows per second over REPEATS runs of `steps` batches, after a warm-up batch."""
  finish(next(batches))  # compile, start threads
  rates = []
  for _ in range(REPEATS):
    t = time.perf_counter()
    for _ in range(steps):
      finish(next(batches))
    rates.append(steps * batch / (time.perf_counter() - t))
  return float(np.median(rates))


def time_prepared(ds_dir: pathlib.Path, batch: int, steps: int,
                  threads: int) -> tuple[float, float]:
  """(host, device) windows/s of the ShardedLoader."""
  loader = ShardedLoader(ds_dir, "train", batch, seed=0, num_threads=threads, prefetch=2)
  host = rate(loader.host_batches(), steps, batch)
  device = rate(iter(loader), steps, batch, ready)
  return host, device


def time_per_item(root: pathlib.Path, ds_dir: pathlib.Path, window: int, batch: int,
                  steps: int, loader: ShardedLoader) -> tuple[float, float]:
  """(host, device) windows/s reading every window from the raw files."""
  layout = GeneExpLayout(root, "K562")
  genes = load_genes(layout, 11).splits["train"]
  with WindowReader(layout, window, peaks=load_peaks(ds_dir / "macs3_dnase_peaks.narrowPeak"),
                    with_truth=True) as reader:
    def batches():
      step = 0
      while True:
        items = [reader.read(genes[(step * batch + i) % len(genes)]) for i in range(batch)]
        host = {k: np.stack([np.asarray(x[k]) for x in items]) for k in items[0]}
        host["valid"] = np.ones(batch, bool)
        step += 1
        yield host
    host = rate(batches(), steps, batch)
    device = rate(batches(), steps, batch, lambda h: ready(loader.to_global(h)))
  return host, device


def original_pattern_reader(root: pathlib.Path, peaks_path: pathlib.Path, window: int):
  """A function gene -> example dict that reads like the original code (see module doc)."""
  import h5py  # noqa: PLC0415
  import pyBigWig  # noqa: PLC0415
  import pyfaidx  # noqa: PLC0415

  layout = GeneExpLayout(root, "K562")
  lengths = json.loads(layout.chr_length_json.read_text())["hg38"]
  genome = pyfaidx.Fasta(str(layout.fasta))
  h3k27ac, dnase = pyBigWig.open(str(layout.h3k27ac_bigwig)), pyBigWig.open(str(layout.dnase_bigwig))
  hic = {c: h5py.File(layout.hic_file(c), "r") for c in lengths if layout.hic_file(c).exists()}

  def per_base(bed: pathlib.Path) -> dict[str, np.ndarray]:
    masks = {c: np.zeros(n, bool) for c, n in lengths.items()}
    for line in bed.read_text().splitlines():
      f = line.split("\t")
      if len(f) >= 3 and f[0] in masks:
        masks[f[0]][int(f[1]):int(f[2])] = True
    return masks

  blacklist, includelist = per_base(layout.blacklist_bed), per_base(layout.includelist_bed)
  peaks = per_base(peaks_path)
  one_hot = {"A": [True, False, False, False], "C": [False, True, False, False],
             "G": [False, False, True, False], "T": [False, False, False, True],
             "N": [False, False, False, False]}
  half = window // 2

  def read(gene):
    chrom, tss, n = gene.chrom, gene.tss, lengths[gene.chrom]
    start, end = max(0, tss - half), min(n, tss + half)
    left, right = max(0, half - tss), max(0, tss + half - n)
    seq = "N" * left + genome[chrom][start:end].seq.upper() + "N" * right
    dna = np.array([one_hot.get(b, one_hot["N"]) for b in seq], dtype=bool)
    tracks = [np.nan_to_num(np.asarray([0.0] * left + bw.values(chrom, start, end) + [0.0] * right,
                                       np.float32)) for bw in (h3k27ac, dnase)]
    contact = np.pad(hic[chrom][f"{chrom}_{tss}"][:], (left, right))[:window]
    tracks.append(np.log10(1 + np.nan_to_num(contact.astype(np.float32))))
    masks = {k: np.pad(m[chrom][start:end], (left, right))
             for k, m in (("blacklist", blacklist), ("includelist", includelist),
                          ("peaks", peaks))}
    return {"dna": dna.astype(np.float32), "signals": np.stack(tracks, -1), **masks,
            "rna_feat": gene.rna_feat, "target": np.float32(gene.target)}

  return read


def time_original_pattern(root: pathlib.Path, ds_dir: pathlib.Path, window: int, batch: int,
                          steps: int) -> float:
  """Host windows/s reading each window the way the original code does."""
  genes = load_genes(GeneExpLayout(root, "K562"), 11).splits["train"]
  read = original_pattern_reader(root, ds_dir / "macs3_dnase_peaks.narrowPeak", window)

  def batches():
    step = 0
    while True:
      items = [read(genes[(step * batch + i) % len(genes)]) for i in range(batch)]
      step += 1
      yield {k: np.stack([x[k] for x in items]) for k in items[0]}

  return rate(batches(), steps, batch)


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--work", type=pathlib.Path, default=None,
                 help="where the synthetic data and the prepared set live (default: temp)")
  p.add_argument("--genes", type=int, default=64)
  p.add_argument("--window", type=int, default=200_000)
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--steps", type=int, default=30, help="timed batches per path")
  p.add_argument("--threads", type=int, default=2, help="grain read threads")
  args = p.parse_args()
  with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp:
    work = args.work or pathlib.Path(tmp)
    root, ds_dir = prepare(work, args.genes, args.window)
    prepared = time_prepared(ds_dir, args.batch, args.steps, args.threads)
    helper = ShardedLoader(ds_dir, "train", args.batch)
    per_item = time_per_item(root, ds_dir, args.window, args.batch, args.steps, helper)
    original = time_original_pattern(root, ds_dir, args.window, args.batch,
                                     max(2, args.steps // 10))
  result = {
      "window": args.window, "global_batch": args.batch, "devices": jax.device_count(),
      "backend": jax.default_backend(), "threads": args.threads, "steps": args.steps,
      "cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2),
      "prepared_host": round(prepared[0], 1), "prepared_device": round(prepared[1], 1),
      "per_item_host": round(per_item[0], 1), "per_item_device": round(per_item[1], 1),
      "original_pattern_host": round(original, 2),
      "speedup_host_vs_original_pattern": round(prepared[0] / original, 1),
      "speedup_host": round(prepared[0] / per_item[0], 2),
      "speedup_device": round(prepared[1] / per_item[1], 2),
  }
  print(f"windows/s at L={args.window}, global batch {args.batch}, "
        f"{jax.device_count()} {jax.default_backend()} device(s)")
  print(f"{'path':<48}{'host':>10}{'device':>10}")
  print(f"{'prepared data set (ShardedLoader)':<48}{prepared[0]:>10.1f}{prepared[1]:>10.1f}")
  print(f"{'per item from FASTA+bigWig+HDF5 (WindowReader)':<48}{per_item[0]:>10.1f}"
        f"{per_item[1]:>10.1f}")
  print(f"{'per item, the original access pattern':<48}{original:>10.1f}{'-':>10}")
  print(f"{'speed-up vs our per-item WindowReader':<48}{prepared[0] / per_item[0]:>9.1f}x"
        f"{prepared[1] / per_item[1]:>9.1f}x")
  print(f"{'speed-up vs the original access pattern':<48}{prepared[0] / original:>9.1f}x")
  print(json.dumps(result))
  return 0


if __name__ == "__main__":
  sys.exit(main())
