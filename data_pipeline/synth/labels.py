"""The expression formula of the synthetic genome: the known answer the model must learn.

For gene g with candidate elements e in its window:

  activity_e = sqrt(dhs_e * h3k27ac_e)                       (ABC activity, real counts)
  effect_e   = units_e * activity_e * contact_e / contact(0)  if e is causal, else 0
  drive_g    = log(1 + sum_e effect_e / ACTIVITY_REF)
  promoter_g = log(1 + sqrt(H3K27ac.RPM.TSS1Kb_g * DHS.RPM.TSS1Kb_g))   (gene table)
  rna_g      = sum_k RNA_WEIGHTS[k] * rna_feature_gk
  clean_g    = B0 + W_DRIVE * z(drive) + W_PROMOTER * z(promoter) + W_RNA * z(rna)
  label_g    = max(0, clean_g + sigma * eps_g),   eps_g ~ N(0, 1)
  CAGE_g     = 10 ** label_g - 1                    so log10(1 + CAGE) = label

z(x) = (x - mean) / sd over the data set's genes (the means and sds are written to
truth/labels.json). Decoys ("dead", "split": no grammar units; "insulated": grammar units
but contact 0) have effect exactly 0. sigma = sd(clean) * sqrt(1 / NOISE_CEILING**2 - 1), so
the expected Pearson between the noise-free and the noisy label is NOISE_CEILING.
"""

from __future__ import annotations

import dataclasses

import numpy as np

B0 = 1.8
W_DRIVE, W_PROMOTER, W_RNA = 0.75, 0.40, 0.20
NOISE_CEILING = 0.90
# Median ABC activity sqrt(DNase * H3K27ac) of the shipped real elements (read counts).
ACTIVITY_REF = 100.0
# Weights of the 8 mRNA features in layout.RNA_FEATURE_COLUMNS order: longer introns and
# CDS, denser exons raise expression; long UTRs and GC-rich 3' UTRs lower it (signs follow
# the mRNA half-life literature; sizes are ours).
RNA_WEIGHTS = np.array([-0.3, 0.4, 0.5, -0.3, 0.0, 0.2, -0.3, 0.02])
CAUSAL = "causal"


@dataclasses.dataclass(frozen=True)
class Components:
  """Per gene (G genes), float (G,) each; see the module docstring."""
  drive: np.ndarray
  promoter: np.ndarray
  rna: np.ndarray
  clean: np.ndarray


def element_effect(klass: np.ndarray, units: np.ndarray, dhs: np.ndarray,
                   h3k27ac: np.ndarray, contact: np.ndarray) -> np.ndarray:
  """float (n,) effect of each of n elements on its gene. klass: str (n,); units: int (n,);
  dhs, h3k27ac: float (n,) read counts; contact: float (n,) noise-free contact with the TSS
  relative to the contact at distance 0 (0 for insulated elements)."""
  activity = np.sqrt(dhs * h3k27ac)
  return np.where(klass == CAUSAL, units * activity * contact, 0.0)


def components(effect: np.ndarray, gene_of_element: np.ndarray, n_genes: int,
               h3k27ac_tss1kb: np.ndarray, dhs_tss1kb: np.ndarray, rna: np.ndarray
               ) -> tuple[Components, dict[str, float]]:
  """Noise-free labels of G genes and the standardisation constants used.

  effect: float (n,) per element; gene_of_element: int (n,) gene index; h3k27ac_tss1kb,
  dhs_tss1kb: float (G,) promoter RPM; rna: float (G, 8) mRNA features.
  """
  total = np.bincount(gene_of_element, weights=effect, minlength=n_genes)
  drive = np.log1p(total / ACTIVITY_REF)
  promoter = np.log1p(np.sqrt(h3k27ac_tss1kb * dhs_tss1kb))
  rna_term = rna @ RNA_WEIGHTS
  stats = {}
  for name, x in (("drive", drive), ("promoter", promoter), ("rna", rna_term)):
    stats[f"{name}_mean"] = float(x.mean())
    stats[f"{name}_sd"] = float(x.std()) if x.std() > 0 else 1.0
  clean = apply_formula(drive, promoter, rna_term, stats)
  return Components(drive, promoter, rna_term, clean), stats


def apply_formula(drive: np.ndarray, promoter: np.ndarray, rna_term: np.ndarray,
                  stats: dict[str, float]) -> np.ndarray:
  """Noise-free label, float (G,), from the three per-gene terms (float (G,) each)."""
  def z(name, x):
    return (x - stats[f"{name}_mean"]) / stats[f"{name}_sd"]
  return B0 + W_DRIVE * z("drive", drive) + W_PROMOTER * z("promoter", promoter) + (
      W_RNA * z("rna", rna_term))


def noise_sigma(clean: np.ndarray) -> float:
  """Label noise sd giving an expected noise-ceiling Pearson of NOISE_CEILING."""
  return float(clean.std() * np.sqrt(1.0 / NOISE_CEILING ** 2 - 1.0))


def noisy(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
  """float (G,) labels log10(1 + CAGE): clean + N(0, sigma), clipped below at 0."""
  return np.maximum(0.0, clean + sigma * rng.standard_normal(len(clean)))
