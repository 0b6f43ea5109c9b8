"""Releases: published versions and their files, who may download them, and signed download links."""
