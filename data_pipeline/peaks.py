"""MACS3 peaks on the DNase track: the paper's "MACS3" baseline mask and the reference that
the learned mask is compared with (docs/method.md, "Baselines").

Once per data set: the DNase bigWig is exported as bedGraph and `macs3 bdgpeakcall` calls peaks
on it; the peaks BED then becomes a per-window bool mask through `readers.masks`.

Parameters (`PeakParams`) and why:
- cutoff: bdgpeakcall's default (5) is meant for -log10 p-value tracks; ours is a raw signal
  track, so the default cutoff is relative to the track itself: `fold` (default 3) times the
  genome-wide mean signal per base over the chromosomes of the data set, the fold-enrichment
  idea of MACS applied to a track without a control. `--peak-cutoff` sets an absolute value.
- min_length 200: about the width of a DNase hypersensitive site / nucleosome-free region
  (bdgpeakcall's default, "better to set it as d").
- max_gap 30: bdgpeakcall's default (about a read length); merges peaks split by a dip.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from data_pipeline.errors import DataFormatError, RunFailedError
from data_pipeline.readers.masks import IntervalMask, read_interval_bed
from data_pipeline.readers.bigwig import BigWigTrack

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PeakParams:
  """bdgpeakcall settings; `cutoff=None` means `fold` x the genome-wide mean signal."""

  cutoff: float | None = None
  fold: float = 3.0
  min_length: int = 200
  max_gap: int = 30


def macs3_executable() -> str:
  """The `macs3` command of this Python environment (or on PATH)."""
  local = pathlib.Path(sys.executable).parent / "macs3"
  if local.is_file():
    return str(local)
  found = shutil.which("macs3")
  if found is None:
    raise RunFailedError("macs3 not found next to the Python interpreter or on PATH; "
                            "install it with `pip install macs3==3.0.4`")
  return found


def write_bedgraph(track: BigWigTrack, chroms: list[str], path: pathlib.Path) -> float:
  """Writes the stored intervals of `chroms` as bedGraph; returns the mean signal per base
  over those chromosomes (uncovered bases count as 0)."""
  total, bases = 0.0, 0
  with path.open("w") as f:
    for chrom in chroms:
      iv = np.array(track.intervals(chrom), dtype=np.float64).reshape(-1, 3)
      values = np.nan_to_num(iv[:, 2])
      keep = values != 0  # zeros are bdgpeakcall's baseline anyway
      starts, ends = iv[keep, 0].astype(np.int64), iv[keep, 1].astype(np.int64)
      total += float(np.sum((ends - starts) * values[keep]))
      bases += track.lengths[chrom]
      lines = [f"{chrom}\t{s}\t{e}\t{v:.6g}\n" for s, e, v in zip(starts, ends, values[keep])]
      f.writelines(lines)
  return total / max(bases, 1)


def call_dnase_peaks(dnase_bigwig: str | pathlib.Path, chroms: list[str],
                     out_bed: str | pathlib.Path,
                     params: PeakParams = PeakParams()) -> float:
  """Calls MACS3 peaks on the DNase track of `chroms` into `out_bed` (narrowPeak).

  Returns the cutoff used. The output appears only when macs3 succeeded (temp file + rename).
  """
  out_bed = pathlib.Path(out_bed)
  track = BigWigTrack(dnase_bigwig)
  try:
    for chrom in chroms:
      track.require(chrom)
    with tempfile.TemporaryDirectory(dir=out_bed.parent, prefix=".peaks-") as tmp:
      bdg = pathlib.Path(tmp) / "dnase.bdg"
      mean = write_bedgraph(track, chroms, bdg)
      cutoff = params.cutoff if params.cutoff is not None else params.fold * mean
      if cutoff <= 0:
        raise DataFormatError(f"{dnase_bigwig}: DNase track is all zero on {chroms}; "
                              "cannot call peaks")
      cmd = [macs3_executable(), "bdgpeakcall", "-i", str(bdg), "-c", f"{cutoff:.6g}",
             "-l", str(params.min_length), "-g", str(params.max_gap), "--no-trackline",
             "--verbose", "0", "--outdir", tmp, "-o", "peaks.narrowPeak"]
      log.info("calling DNase peaks: %s", " ".join(cmd))
      result = subprocess.run(cmd, capture_output=True, text=True, check=False)
      produced = pathlib.Path(tmp) / "peaks.narrowPeak"
      if result.returncode != 0 or not produced.is_file():
        raise RuntimeError(f"macs3 bdgpeakcall failed on {dnase_bigwig} (exit "
                           f"{result.returncode}): {result.stderr[-2000:]}")
      os.replace(produced, out_bed)
  finally:
    track.close()
  return cutoff


def load_peaks(path: str | pathlib.Path) -> IntervalMask:
  """Reads a peaks BED/narrowPeak as a mask; `.window(chrom, start, end)` -> bool (L,)."""
  return read_interval_bed(path)
