"""Motif scanning and enrichment (seq2exp_jax/outputs/motifs.py, motif_background.py): the
exact score distribution against enumeration, a planted site found on its strand and
position, enrichment of a planted motif and of nothing else, BH q-values against a direct
computation, the shuffle keeping dinucleotides, and matched background regions."""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest

from data_pipeline.readers.genome import Genome
from data_pipeline.readers.motifs import MotifMatrix, read_motif_file
from seq2exp_jax.outputs import motif_background as bg
from seq2exp_jax.outputs import motifs

BACKGROUND = np.array([0.3, 0.2, 0.2, 0.3])
COMP = np.array([3, 2, 1, 0, 4], np.uint8)  # complement, N stays N


def shipped(name: str) -> MotifMatrix:
  return next(m for m in read_motif_file() if m.name == name)


def consensus(matrix: MotifMatrix) -> np.ndarray:
  return matrix.counts.argmax(1).astype(np.uint8)


def test_score_tail_is_the_exact_distribution():
  rng = np.random.default_rng(0)
  scores = rng.integers(-300, 200, size=(5, 4))
  lowest, tail = motifs.score_tail(scores, BACKGROUND)
  totals = collections.Counter()
  for site in itertools.product(range(4), repeat=5):
    totals[int(scores[np.arange(5), site].sum())] += float(np.prod(BACKGROUND[list(site)]))
  for s in sorted(totals)[::7]:
    want = sum(p for t, p in totals.items() if t >= s)
    assert tail[s - lowest] == pytest.approx(want, rel=1e-9)
  assert lowest == min(totals) and tail[0] == pytest.approx(1.0)


def test_threshold_gives_its_p_value_in_random_dna():
  rng = np.random.default_rng(1)
  dna = rng.choice(4, size=400_000, p=BACKGROUND).astype(np.uint8)
  for name in ("GATA1", "KLF1"):
    m = motifs.prepare(shipped(name), BACKGROUND, p_value=1e-3, pseudocount=0.1)
    fwd, rev = motifs.site_scores(dna, m)
    rate = ((fwd >= m.threshold).mean() + (rev >= m.threshold).mean()) / 2
    assert 0.6e-3 < rate <= 1.15e-3, (name, rate)  # at most p, up to score granularity


@pytest.mark.parametrize("strand", ["+", "-"])
def test_planted_site_is_found_on_its_strand_and_position(strand):
  rng = np.random.default_rng(2)
  dna = rng.choice(4, size=2000, p=BACKGROUND).astype(np.uint8)
  gata1 = shipped("GATA1")
  site = consensus(gata1)
  dna[1234:1234 + gata1.width] = site if strand == "+" else COMP[site[::-1]]
  dna[50:60] = 4  # N never scores
  m = motifs.prepare(gata1, BACKGROUND, p_value=1e-4, pseudocount=0.1)
  position, got_strand, score = motifs.best_site(dna, m)
  assert (position, got_strand) == (1234, strand)
  assert score * motifs.SCALE >= m.threshold
  fwd, rev = motifs.site_scores(dna, m)
  assert (fwd[41:60] < -1e9).all() and (rev[41:60] < -1e9).all()
  # The reverse scores are the forward scores of the reverse complement.
  np.testing.assert_array_equal(rev, motifs.site_scores(COMP[dna[::-1]], m)[0][::-1])


def test_region_hits_agree_with_best_site_per_region():
  rng = np.random.default_rng(3)
  seqs = [rng.choice(4, size=int(n), p=BACKGROUND).astype(np.uint8)
          for n in rng.integers(5, 400, size=60)]
  ms = [motifs.prepare(m, BACKGROUND, p_value=1e-2, pseudocount=0.1)
        for m in read_motif_file()]
  hits = motifs.region_hits(seqs, ms)
  for r, codes in enumerate(seqs):
    for k, m in enumerate(ms):
      want = len(codes) >= m.width and motifs.best_site(codes, m)[2] * motifs.SCALE >= (
          m.threshold - 1e-6)
      assert hits[r, k] == want
  assert 0 < hits.sum() < hits.size


def test_bh_qvalues_match_a_direct_computation():
  rng = np.random.default_rng(4)
  p = np.concatenate([rng.random(40), rng.random(10) * 1e-3, [1.0, 0.5, 0.5]])
  m = len(p)
  direct = np.array([min(min(p[j] * m / (p <= p[j]).sum() for j in range(m) if p[j] >= p[i]),
                         1.0) for i in range(m)])
  np.testing.assert_allclose(motifs.bh_qvalues(p), direct, rtol=1e-12)


def test_planted_motif_is_enriched_and_no_other():
  rng = np.random.default_rng(5)
  klf1 = shipped("KLF1")
  elements, background = [], []
  for i in range(40):
    codes = rng.choice(4, size=300, p=BACKGROUND).astype(np.uint8)
    if i < 30:  # 30 of 40 elements carry KLF1 (either strand), no background region does
      site = consensus(klf1)
      codes[100:108] = site if i % 2 else COMP[site[::-1]]
    elements.append(codes)
  background = [rng.choice(4, size=300, p=BACKGROUND).astype(np.uint8) for _ in range(80)]
  rows, composition = motifs.motif_enrichment(elements, background, read_motif_file())
  by_name = {r.name: r for r in rows}
  assert rows[0].name == "KLF1" and by_name["KLF1"].q_value < 0.05
  assert by_name["KLF1"].elements_with_hit >= 30 and by_name["KLF1"].odds_ratio > 10
  assert by_name["KLF1"].ci_low > 1
  for name in ("GATA1", "HNF4A", "FOXA2"):
    assert by_name[name].q_value >= 0.05, by_name[name]
  np.testing.assert_allclose(composition, composition[::-1])
  assert [r.q_value for r in rows] == sorted(r.q_value for r in rows)


def test_dinucleotide_shuffle_keeps_dinucleotides():
  rng = np.random.default_rng(6)
  pairs = lambda x: collections.Counter(zip(x[:-1].tolist(), x[1:].tolist()))
  for n in (3, 17, 500):
    codes = rng.integers(0, 5, size=n).astype(np.uint8)
    out = bg.dinucleotide_shuffle(codes, rng)
    assert pairs(out) == pairs(codes) and (out[0], out[-1]) == (codes[0], codes[-1])
  long = rng.integers(0, 4, size=500).astype(np.uint8)
  assert (bg.dinucleotide_shuffle(long, rng) != long).mean() > 0.5
  a = bg.shuffled_background([long], per_element=2, seed=9)
  np.testing.assert_array_equal(a[1], bg.shuffled_background([long], per_element=2, seed=9)[1])


@pytest.fixture(scope="module")
def fasta(tmp_path_factory):
  """chr1: 30 kb of AT-rich then 30 kb of GC-rich DNA; chr2: 5 kb. An element near the
  switch has both kinds within its flank, and only a GC-matched draw keeps to its side."""
  rng = np.random.default_rng(7)
  path = tmp_path_factory.mktemp("genome") / "g.fa"
  at = rng.choice(list("ACGT"), size=30_000, p=[0.35, 0.15, 0.15, 0.35])
  gc = rng.choice(list("ACGT"), size=30_000, p=[0.15, 0.35, 0.35, 0.15])
  chr2 = rng.choice(list("ACGT"), size=5_000)
  path.write_text(f">chr1\n{''.join(at) + ''.join(gc)}\n>chr2\n{''.join(chr2)}\n")
  return path


def test_matched_background_is_near_disjoint_and_gc_matched(fasta, tmp_path):
  genome = Genome(fasta)
  bed = tmp_path / "e.bed"
  bed.write_text("chr1\t5000\t5400\tg1\t500\t.\nchr1\t5300\t5500\tg2\t500\t.\n"
                 "chr1\t29500\t29800\tg3\t0\t.\nchr2\t100\t300\tg4\t0\t.\n")
  elements = bg.read_regions(bed, genome.lengths)
  assert [(e.chrom, e.start, e.end) for e in elements] == [
      ("chr1", 5000, 5500), ("chr1", 29500, 29800), ("chr2", 100, 300)]
  regions = bg.matched_background(genome, elements, per_element=3, flank=8000, seed=0)
  assert regions == bg.matched_background(genome, elements, per_element=3, flank=8000, seed=0)
  assert regions != bg.matched_background(genome, elements, per_element=3, flank=8000, seed=1)
  assert len(regions) == 9
  spans = sorted((r.chrom, r.start, r.end) for r in regions + elements)
  for (c1, _, e1), (c2, s2, _) in zip(spans, spans[1:]):
    assert c1 != c2 or e1 <= s2  # no background overlaps an element or another one
  for e in elements:
    near = [r for r in regions if r.chrom == e.chrom and abs(r.start - e.start) <= 8000 + 500]
    assert len(near) == 3 and all(r.end - r.start == e.end - e.start for r in near)
    own = bg.gc_content(genome.window(e.chrom, e.start, e.end))
    for r in near:
      assert r.gc == pytest.approx(bg.gc_content(genome.window(r.chrom, r.start, r.end)))
      assert abs(r.gc - own) < 0.06


def test_bed_background_is_centred_on_the_users_regions(fasta, tmp_path):
  genome = Genome(fasta)
  elements = [bg.Region("chr1", 1000, 1200), bg.Region("chr1", 3000, 3600)]
  pool = [bg.Region("chr1", 1100, 1500),  # overlaps an element: never used
          bg.Region("chr1", 8000, 8100), bg.Region("chr1", 12000, 12400),
          bg.Region("chr1", 20000, 20050), bg.Region("chr2", 2000, 2300)]
  regions = bg.bed_background(genome, elements, pool, per_element=2, seed=0)
  assert len(regions) == 4
  centres = {(r.chrom, (r.start + r.end) // 2) for r in pool[1:]}
  for r in regions:
    assert r.end - r.start in (200, 600)
    assert (r.chrom, r.start + (r.end - r.start) // 2) in centres
    assert not any(r.chrom == e.chrom and r.start < e.end and e.start < r.end
                   for e in elements)
  assert bg.bed_background(genome, elements, pool[:1], per_element=2, seed=0) == []
