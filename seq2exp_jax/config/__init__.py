"""The config layer: loading experiment files, command-line overrides, the JSON a workdir
keeps, and which parts of a config fix a checkpoint. Nothing here builds a model."""
