"""The train layer: what a config trains (`task`), the optimizer, the jitted steps, the
loop, checkpoints and where measurements go."""
