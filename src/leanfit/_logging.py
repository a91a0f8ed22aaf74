"""The one ``leanfit`` logger. Library code logs; only the CLI prints."""

from __future__ import annotations

import logging

_ROOT = "leanfit"


def get_logger(name: str) -> logging.Logger:
    """Return a child of the ``leanfit`` logger.

    Example:
        >>> get_logger("leanfit.data").name
        'leanfit.data'
    """
    if not name.startswith(_ROOT):
        name = f"{_ROOT}.{name}"
    return logging.getLogger(name)


logging.getLogger(_ROOT).addHandler(logging.NullHandler())
