"""The errors that are the user's to fix, in one family. The CLI reports an :class:`LwcnnError` as
one line naming the file (or setting) and the problem, with exit status 2, and lets every other
exception through with its traceback: that one is a bug (``LWCNN_DEBUG=1`` shows tracebacks for
all). The same mistake raises the same type everywhere."""

from __future__ import annotations


class LwcnnError(Exception):
    """A problem a user can fix. ``str()`` is one line that names the file (or setting) and the
    problem."""


class ConfigError(LwcnnError, ValueError):
    """A bad setting: a config file, a ``key=value`` override, a command-line option or an argument
    of the Python API out of its range."""


class DataError(LwcnnError, ValueError):
    """A problem with a dataset (layout, labels, masks, split), found before training starts."""


class InputError(LwcnnError):
    """An input that cannot be used: an image that cannot be read, no images where some were named."""


class ModelError(LwcnnError, ValueError):
    """A model file (metadata card, weights, ONNX) that cannot be used as it is."""


class OutputError(LwcnnError):
    """An output file or folder that cannot be written (or is in use by another run)."""


class MissingError(LwcnnError, FileNotFoundError):
    """A named file, folder, model or run that is not there."""


class RunExistsError(LwcnnError, FileExistsError):
    """A run folder that already holds a run (continue it with ``--resume``, or choose another)."""
