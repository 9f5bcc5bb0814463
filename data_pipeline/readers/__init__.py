"""Readers of the published GeneExp layout, one file per kind of input (docs/data.md, "The
published GeneExp layout").

`window.WindowReader` ties them together: it opens every file once and returns one example
(a dict of numpy arrays) per gene.
"""
