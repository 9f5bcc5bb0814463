"""Where every file of the published GeneExp data set lives (docs/data.md, "The published
GeneExp layout").

The synthetic genome writes exactly this layout and the readers read it, so one object
names every path. Paths follow the published data set: a user points `root` at the unpacked
download and nothing is renamed.
"""

from __future__ import annotations

import dataclasses
import pathlib

from data_pipeline.errors import InputError

# Cell type -> (ABC neighbourhood folder, H3K27ac bigWig, DNase bigWig).
CELL_FILES: dict[str, tuple[str, str, str]] = {
    "K562": (
        "K562_DNase_ENCFF257HEE_hic_4DNFITUOMFUQ_1MB_ABC_nominated/"
        "DNase_ENCFF257HEE_Neighborhoods",
        "ENCFF465GBD.bigWig",
        "ENCFF414OGC.bigWig",
    ),
    "GM12878": (
        "GM12878_DNase_ENCFF020WZB_hic_4DNFI1UEG1HD_1MB_ABC_nominated/"
        "DNase_ENCFF020WZB_Neighborhoods",
        "ENCFF798KYP.bigWig",
        "ENCFF960FMM.bigWig",
    ),
}

GENOME = "hg38"
EXPRESSION_CSV = "GM12878_K562_18377_gene_expr_fromXpresso.csv"
FOLD_CSV = "leave_chrom_out_crossvalidation_split_18377genes.csv"
# The 8 mRNA half-life features, in model order (promoter activity is the 9th).
RNA_FEATURE_COLUMNS: tuple[str, ...] = (
    "UTR5LEN_log10zscore", "CDSLEN_log10zscore", "INTRONLEN_log10zscore",
    "UTR3LEN_log10zscore", "UTR5GC", "CDSGC", "UTR3GC", "ORFEXONDENSITY",
)
# The expression label a data set is built for (`build-data --target`): the CAGE counts
# (the paper's target, log10(1 + x)) or the RNA-seq column `Actual_<cell>` (Xpresso's value,
# already log-scale, used as stored, as the original's expr_type='RNA' and EPInformer do).
TARGETS: tuple[str, ...] = ("cage", "rna")


@dataclasses.dataclass(frozen=True)
class GeneExpLayout:
  """Paths of one cell type's files under a GeneExp data root."""

  root: pathlib.Path
  cell_type: str = "K562"

  def __post_init__(self):
    object.__setattr__(self, "root", pathlib.Path(self.root))
    if self.cell_type not in CELL_FILES:
      raise InputError(
          f"unknown cell type {self.cell_type!r}: expected one of {sorted(CELL_FILES)}")

  @property
  def inter(self) -> pathlib.Path:
    return self.root / "promo_enhan_inter"

  @property
  def chr_length_json(self) -> pathlib.Path:
    return self.root / "chr_length.json"

  @property
  def fasta(self) -> pathlib.Path:
    return self.root / GENOME / f"{GENOME}.ml.fa"

  @property
  def expression_csv(self) -> pathlib.Path:
    return self.inter / EXPRESSION_CSV

  @property
  def fold_csv(self) -> pathlib.Path:
    return self.inter / FOLD_CSV

  @property
  def gene_table(self) -> pathlib.Path:
    return self.inter / CELL_FILES[self.cell_type][0] / "GeneList.txt"

  @property
  def enhancer_list(self) -> pathlib.Path:
    """ABC's candidate elements (chr, start, end, name, class, activity_base, ...), beside
    the gene table; optional (build-data falls back to the DNase peaks)."""
    return self.inter / CELL_FILES[self.cell_type][0] / "EnhancerList.txt"

  @property
  def h3k27ac_bigwig(self) -> pathlib.Path:
    return self.inter / "H3K27ac" / self.cell_type / CELL_FILES[self.cell_type][1]

  @property
  def dnase_bigwig(self) -> pathlib.Path:
    return self.inter / "DNase-seq" / self.cell_type / CELL_FILES[self.cell_type][2]

  @property
  def hic_dir(self) -> pathlib.Path:
    return self.inter / "HiC" / self.cell_type

  def hic_file(self, chrom: str) -> pathlib.Path:
    """`chrom` is 'chrN'; one HDF5 per chromosome with datasets named `chrN_<tss>`."""
    return self.hic_dir / f"hic_feat_{chrom}.h5"

  @property
  def cage_column(self) -> str:
    return f"{self.cell_type}_CAGE_128*3_sum"

  @property
  def rna_column(self) -> str:
    return f"Actual_{self.cell_type}"

  def target_column(self, target: str = "cage") -> str:
    """The expression CSV's column of `target` (a name in TARGETS)."""
    if target not in TARGETS:
      raise InputError(f"unknown target {target!r}: expected one of {list(TARGETS)}")
    return self.cage_column if target == "cage" else self.rna_column

  # Masks. The published set ships pickles; we read BED files by default and convert the
  # pickles only on explicit opt-in (they execute code when loaded).
  @property
  def blacklist_bed(self) -> pathlib.Path:
    return self.root / f"{GENOME}_blacklist.bed"

  @property
  def includelist_bed(self) -> pathlib.Path:
    return self.root / f"{GENOME}_includelist.bed"

  @property
  def blacklist_pickle(self) -> pathlib.Path:
    return self.root / f"{GENOME}_blacklist_dict_v1.pkl"

  @property
  def includelist_pickle(self) -> pathlib.Path:
    return self.root / f"{GENOME}_includelist_dict.pkl"

  # Synthetic data sets only: the known answers.
  @property
  def truth_dir(self) -> pathlib.Path:
    return self.root / "truth"

  @property
  def causal_bed(self) -> pathlib.Path:
    return self.truth_dir / "causal_elements.bed"

  @property
  def decoy_bed(self) -> pathlib.Path:
    return self.truth_dir / "decoys.bed"
