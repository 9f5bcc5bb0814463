"""Readers of the published GeneExp layout (SPEC §4), one file per kind of input.

`window.WindowReader` ties them together: it opens every file once and returns one example
(a dict of numpy arrays) per gene.
"""
