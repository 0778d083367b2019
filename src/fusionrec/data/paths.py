"""Where data lives: the data root and the shipped preset specs."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the data root.
DATA_ENV = "FUSIONREC_DATA"
#: Used when neither ``--data-dir`` nor ``FUSIONREC_DATA`` is given.
DEFAULT_DATA_DIR = Path("~/.cache/fusionrec/data")
#: Folder holding one ``<name>.yaml`` spec per public dataset.
PRESETS_DIR = Path(__file__).resolve().parent / "presets"


def resolve_data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data root: ``explicit`` > ``$FUSIONREC_DATA`` > ``~/.cache/fusionrec/data``.

    The folder need not exist yet (``fusionrec data download`` creates it).
    """
    if explicit not in (None, ""):
        return Path(explicit).expanduser()
    from_env = os.environ.get(DATA_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return DEFAULT_DATA_DIR.expanduser()


def preset_names() -> tuple[str, ...]:
    """Names of the shipped presets (plus ``synthetic``, which needs no files)."""
    names = sorted(path.stem for path in PRESETS_DIR.glob("*.yaml"))
    return tuple(names) + ("synthetic",)


def preset_path(name: str) -> Path | None:
    """The spec file of preset ``name``, or ``None`` when there is no such preset."""
    path = PRESETS_DIR / f"{name}.yaml"
    return path if path.is_file() else None
