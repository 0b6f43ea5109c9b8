"""Coverage-guided fuzz targets (atheris, libFuzzer) for everything that parses untrusted bytes.

One module per target, each with ``MAX_LEN``, ``seeds()`` (a seed corpus made by code from the
test factories) and ``one_input(data)``, which raises only when an invariant breaks: an exception
other than ``OfflineServiceError`` escaped, or a successful parse is inconsistent. Run one with
``python -m tests.fuzz TARGET --seconds N`` (``make fuzz`` runs them all); tests/fuzz/test_fuzz.py
runs each for a few thousand inputs in ``make test``.
"""

from __future__ import annotations

__all__ = ["TARGETS"]

TARGETS = ("request_files", "response_files", "archives", "json_bodies")
