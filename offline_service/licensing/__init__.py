"""Licensing: products, licenses, activations and trials; the engine that decides and signs, batches,
and the vendor operations on licenses (services) and the reads (queries). Its adapters: api.py,
pages.py, activations.py, trials.py and offline.py (routes, assembled by web.app) and cli.py (verbs,
registered by cli._main)."""
