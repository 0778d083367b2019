"""The root of every FusionRec exception.

Every error the library raises on purpose subclasses :class:`FusionRecError`, so a caller (the
CLI above all) can tell "the user's input or environment is wrong, say so in one line" from a
bug, by catching one type. Subclasses keep a builtin secondary base (``ValueError``,
``RuntimeError``) where callers already catch that. This module imports nothing from the
package, so every layer, ``data/`` included, may import it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FusionRecError(Exception):
    """A problem the user can act on; ``str(error)`` is one line that says what and where."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``known``, or ``""`` if none is close."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
