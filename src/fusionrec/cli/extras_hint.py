"""Commands that need an optional extra: the install hint in ``--help`` and a one-line error.

``fusionrec --help`` and every other command work on the core install; ``serve``, ``tune`` and
``dp-head`` name the extra they need (see :mod:`fusionrec.extras`) instead of failing on an
import deep inside.
"""

from __future__ import annotations

from fusionrec.cli.main import UserError
from fusionrec.extras import MissingExtraError, hint, require


def epilog(extra: str, what: str) -> str | None:
    """The ``--help`` epilog: the install hint while ``extra`` is missing, else nothing."""
    return hint(extra, what)


def require_extra(extra: str, what: str) -> None:
    """Stop the command with one line naming the extra when its packages are missing."""
    try:
        require(extra, what)
    except MissingExtraError as error:
        raise UserError(str(error)) from None
