"""One config file per experiment (a row of the paper's tables); `common.py` holds the
recipe they share. Loaded by `seq2exp_jax.config.loader.load_config`."""
