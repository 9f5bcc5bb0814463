"""The ablation layer: train and evaluate several experiments x seeds, and tabulate them."""
