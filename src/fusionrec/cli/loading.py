"""Dataset loading shared by the ``text``, ``text show --prompt`` and ``encode`` commands.

Its own module so ``text_cmd`` (which dispatches ``--prompt`` to ``prompt_show``) and
``prompt_show`` (which loads data) do not import each other.
"""

from __future__ import annotations

from fusionrec.cli.main import UserError


def load_for_cli(spec_or_preset: str, data_dir: str | None):
    """``load_dataset`` with data problems turned into one-line user errors."""
    from fusionrec.data.errors import DataError
    from fusionrec.data.load import load_dataset

    try:
        dataset, _ = load_dataset(spec_or_preset, data_dir)
    except (DataError, FileNotFoundError) as error:
        raise UserError(str(error)) from None
    return dataset
