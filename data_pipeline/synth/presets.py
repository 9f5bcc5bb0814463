"""Named sizes of the synthetic genome (`seq2exp synth --preset`)."""

from __future__ import annotations

import dataclasses

from data_pipeline.errors import InputError


@dataclasses.dataclass(frozen=True)
class Preset:
  """n_genes genes, each with a `window` bp window (even) holding >= min_elements real
  candidate elements; genes drawn from `chroms` (None = all shipped chromosomes), stratified
  on the real leave-chromosome-out `fold` with (valid, test) shares of the genes (None: the
  real fold 11's shares)."""
  n_genes: int
  window: int
  min_elements: int
  chroms: tuple[str, ...] | None = None
  fold: int = 11
  shares: tuple[float, float] | None = None


PRESETS: dict[str, Preset] = {
    # Tests: 8 genes on three small chromosomes (chr19 train, chr21 valid, chr22 test).
    "tiny": Preset(n_genes=8, window=8_192, min_elements=2, chroms=("chr19", "chr21", "chr22")),
    # The demo: trains on CPU in minutes.
    "small": Preset(n_genes=300, window=16_384, min_elements=2),
    # A benchmark: thousands of genes with long windows.
    "medium": Preset(n_genes=2_000, window=131_072, min_elements=1),
    # The decisive benchmark (docs/benchmark.md): >= 300 test genes in 16 kb windows, on the
    # real fold 1 (test chr1 + chr2, valid chr11 + chr12: the fold with the most shipped test
    # genes), so that a test Pearson r is known to about +-0.03.
    "benchmark": Preset(n_genes=2_400, window=16_384, min_elements=1, fold=1,
                        shares=(0.07, 0.13)),
}


def resolve(name: str, n_genes: int | None = None, window: int | None = None) -> Preset:
  """The preset `name` with --genes / --window overrides; raises ValueError on bad values."""
  if name not in PRESETS:
    raise InputError(f"unknown preset {name!r}: expected one of {sorted(PRESETS)}")
  preset = PRESETS[name]
  if n_genes is not None:
    if n_genes < 3:
      raise InputError(f"--genes {n_genes}: need at least 3 (train, valid and test genes)")
    preset = dataclasses.replace(preset, n_genes=n_genes)
  if window is not None:
    if window % 2 or window < 4_096:
      raise InputError(f"--window {window}: must be an even number of bp >= 4096 "
                       "(the TSS sits at index L/2 and the promoter takes 2 kb)")
    preset = dataclasses.replace(preset, window=window)
  return preset
