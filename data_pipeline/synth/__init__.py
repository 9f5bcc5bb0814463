"""The synthetic genome with known answers, written in the GeneExp layout (docs/data.md,
"The synthetic genome").

landscape (real K562 neighbourhoods, compacted) -> labels (the expression formula) ->
dna + motifs (background DNA, planted grammar) -> tracks (DNase, H3K27ac, Hi-C) ->
writer + tables (the files); build.build() runs it all, presets names the sizes.
"""
