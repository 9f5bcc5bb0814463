"""Seq2Exp in JAX/Flax: gene expression from 200 kb DNA windows and epigenomic signals,
with a learned mask of the regulatory elements that drive each gene."""

__version__ = "0.1.0"
