"""The model layer: Flax linen modules and pure functions, nothing else of the package.

    dna, signals ──> input Linears ──> [generator backbone ──> BetaMask] ──> mask
                                   └──> masked input ──> predictor backbone ──> promoter
                                        pool + mRNA features ──> ExpressionHead ──> prediction

Files, one idea each: `scan` (the selective scan), `ssm_config` (every setting of a
Mamba backbone), `mamba` (mixers), `caduceus` (the residual-block backbone), `hyena` and
`fft_conv` (the HyenaDNA backbone), `backbones` (the registry every model builds its
backbone from), `bottleneck` (Beta sampling and KL), `beta_mask` (the learned mask),
`promoter` (the centre window and region rules), `packing` (the hard run's selected
positions), `heads`, `losses`, `outputs` (the one output type of every model), `seq2exp`
and `baselines`.

Array arguments carry jaxtyping shape annotations (checked by a runtime type checker in the
tests), with one letter per dimension everywhere:

    B batch   L positions   D model width   E inner width (expand * D)   N SSM state size
    R dt rank   K conv kernel   C channels of a depthwise conv or filter   T scan chunk
    P packed capacity   S signal tracks   F mRNA features (+ promoter activity)
    O Hyena order   Z Hyena positional features
    M candidate-element slots (EPInformer)   W element length   G element features
    Y elements of a batch flattened (B * M)
"""
