"""Training: the LightningModule (generator + discriminator, manual optimisation)."""
