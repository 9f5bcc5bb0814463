"""The evaluation layer: metrics that stream over batches (`streaming`) and one pass over a
split (`evaluate`). It knows the model layer's promoter span and nothing of training."""
