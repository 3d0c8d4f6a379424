"""Errors that are the user's to fix, each reported by the CLI as one line naming the file and the
problem (exit status 2). They derive from ``ValueError`` so that callers catching that still work."""

from __future__ import annotations


class LwcnnError(ValueError):
    """A problem a user can fix: bad input, a bad model file, an unwritable output. ``str()`` is one
    line that names the file (or setting) and the problem."""


class ModelError(LwcnnError):
    """A model file (metadata card, weights, ONNX) that cannot be used as it is."""


class OutputError(LwcnnError):
    """An output file or folder that cannot be written (or is in use by another run)."""
