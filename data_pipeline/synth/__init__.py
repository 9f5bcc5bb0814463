"""The synthetic genome with known answers (SPEC §5), written in the GeneExp layout.

landscape (real K562 neighbourhoods, compacted) -> labels (the expression formula) ->
dna + motifs (background DNA, planted grammar) -> tracks (DNase, H3K27ac, Hi-C) ->
writer + tables (the files); build.build() runs it all, presets names the sizes.
"""
