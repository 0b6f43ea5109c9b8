"""Licensing: products, licenses, activations and trials; the engine that decides and signs, batches,
and the vendor operations on licenses."""
