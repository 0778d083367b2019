"""Dataset loading shared by the ``text``, ``text show --prompt`` and ``encode`` commands.

Its own module so ``text_cmd`` (which dispatches ``--prompt`` to ``prompt_show``) and
``prompt_show`` (which loads data) do not import each other.
"""

from __future__ import annotations


def load_for_cli(spec_or_preset: str, data_dir: str | None):
    """The dataset of a preset or spec (a :class:`DataError` reaches the CLI's one catch)."""
    from fusionrec.data.load import load_dataset

    dataset, _ = load_dataset(spec_or_preset, data_dir)
    return dataset
