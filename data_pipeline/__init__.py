"""Readers for the published GeneExp layout, the synthetic genome, the TFDS builder and the
sharded loader."""
