"""Detectors: one module per family, all behind the small interface in :mod:`detectors.base`."""
