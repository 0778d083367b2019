"""Fetching the public datasets into the data root, checked against the published SHA-256 values.

Each dataset lands in the sub-folder its preset reads (``ml-100k/``, ``lastfm-hetrec2011/``,
``lastfm-kg/``, ``amazon-musical-instruments/``). The hashes are those recorded in the
PROVENANCE.md of each folder. Without a network connection a :class:`DownloadError` says so and
explains how to place the files by hand.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import urllib.error
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.request import urlopen

from fusionrec.data.paths import resolve_data_dir
from fusionrec.errors import FusionRecError

_KGCN = ("https://raw.githubusercontent.com/hwwang55/KGCN/"
         "2363ca2ddc66a79860629b2e0ec6ad23c57697c8/data/music/")


class DownloadError(FusionRecError, RuntimeError):
    """Download impossible (offline, server error) or a file failed its checksum. One line."""


@dataclass(frozen=True)
class RemoteDataset:
    name: str
    folder: str
    urls: tuple[str, ...]             # a zip archive, or the files themselves
    sha256: tuple[tuple[str, str], ...]  # (file inside ``folder``, expected sha256)
    origin: str
    archive: bool = False


REMOTE: dict[str, RemoteDataset] = {r.name: r for r in (
    RemoteDataset(
        "ml-100k", "ml-100k", ("https://files.grouplens.org/datasets/movielens/ml-100k.zip",),
        (("u.data", "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
         ("u.item", "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701"),
         ("u.user", "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c"),
         ("u.genre", "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb"),
         ("u.occupation", "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d"),
         ("u.info", "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b")),
        "GroupLens (MovieLens 100K). The optional KG (kg-recbole/) comes from the RecBole "
        "repository and is not downloaded.", archive=True),
    RemoteDataset(
        "lastfm", "lastfm-hetrec2011",
        ("https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip",),
        (("artists.dat", "c173881362c6b28551368fecb3c0be5a6a30a6cd859e1f5775413dfe46d48648"),
         ("tags.dat", "c815d7216101fd0ba9b9c59fa2a011998d2fd076e0064d281ec4153d95ae8095"),
         ("user_artists.dat", "254272fa721c3935e8be286d28c051b206844307128698ab4eaa41d483379416"),
         ("user_friends.dat", "0360883a3557776e04fdebda851f2e5dd23e796cad7059b968acdebd528d13fa"),
         ("user_taggedartists.dat",
          "c4a9ffae9ab47a9f9b2f0678ab1f7e5c1db4ca818837d8cddd1f5699c5bbf048")),
        "GroupLens (HetRec 2011 Last.fm-2k)", archive=True),
    RemoteDataset(
        "lastfm-kg", "lastfm-kg",
        tuple(_KGCN + f for f in ("kg.txt", "item_index2entity_id.txt", "user_artists.dat")),
        (("kg.txt", "f62bbc8f717c9f68e66dff6faeaa71025092acc11a0f1b4878b953eb05f946a9"),
         ("item_index2entity_id.txt",
          "f9693bdde538f755d09b9931b0be662a98965e538658a00c2050912c0adf487b"),
         ("user_artists.dat", "254272fa721c3935e8be286d28c051b206844307128698ab4eaa41d483379416")),
        "the KGCN GitHub repository (hwwang55/KGCN, data/music/); not a GroupLens download. "
        "The lastfm-kg preset also reads friends and tags from lastfm-hetrec2011/: "
        "run `fusionrec data download lastfm` too"),
    RemoteDataset(
        "amazon-instruments", "amazon-musical-instruments",
        ("https://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"
         "reviews_Musical_Instruments_5.json.gz",),
        (("reviews_Musical_Instruments_5.json.gz",
          "03f9cc27ae13a454cb4ea6cb620fb10546cc1194ef921441d1c5f34addff2748"),),
        "SNAP / Julian McAuley (Amazon 2014 Musical Instruments 5-core)"),
)}


def _fetch(url: str, timeout: float = 30.0) -> bytes:
    from tqdm import tqdm

    with urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed https URLs above
        total = int(response.headers.get("Content-Length") or 0) or None
        buffer = io.BytesIO()
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1]) as bar:
            while chunk := response.read(1 << 16):
                buffer.write(chunk)
                bar.update(len(chunk))
    return buffer.getvalue()


def _manual_steps(remote: RemoteDataset, target: Path) -> str:
    what = "unzip it and put its files" if remote.archive else "put the file(s)"
    names = ", ".join(name for name, _ in remote.sha256)
    return (f"to install by hand, download {' and '.join(remote.urls)} on a connected machine, "
            f"{what} into {target}/ (expected: {names}), then run "
            f"`fusionrec data validate {remote.name} --data-dir {target.parent}`")


def _extract(blob: bytes, target: Path) -> None:
    """Unpack every file of the archive flat into ``target`` (member folders are dropped, so
    no path in the archive can write outside ``target``)."""
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        for member in archive.infolist():
            name = PurePosixPath(member.filename).name
            if member.is_dir() or not name or name.startswith("."):
                continue
            with archive.open(member) as src, open(target / name, "wb") as dst:
                shutil.copyfileobj(src, dst)


def verify(remote: RemoteDataset, target: Path) -> list[str]:
    """Check every expected file; a file that matches only after CRLF -> LF is rewritten with LF
    (copies of these files differ only in line endings). Returns one problem line per file."""
    problems = []
    for name, expected in remote.sha256:
        path = target / name
        if not path.is_file():
            problems.append(f"{path}: missing after download")
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() == expected:
            continue
        unix = data.replace(b"\r\n", b"\n")
        if hashlib.sha256(unix).hexdigest() == expected:
            path.write_bytes(unix)
            continue
        problems.append(f"{path}: sha256 {hashlib.sha256(data).hexdigest()} != expected {expected}")
    return problems


def download(name: str, data_dir=None) -> list[Path]:
    """Download dataset ``name`` (a preset name) into the data root; returns the verified files."""
    if name not in REMOTE:
        raise DownloadError(f"no download for {name!r}; known: {', '.join(REMOTE)}")
    remote = REMOTE[name]
    target = resolve_data_dir(data_dir) / remote.folder
    blobs = []
    for url in remote.urls:
        try:
            blobs.append((url, _fetch(url)))
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            raise DownloadError(f"cannot download {url}: this machine looks offline or the "
                                f"server is unreachable ({reason}); "
                                f"{_manual_steps(remote, target)}") from None
    target.mkdir(parents=True, exist_ok=True)
    for url, blob in blobs:
        if remote.archive:
            _extract(blob, target)
        else:
            (target / url.rsplit("/", 1)[-1]).write_bytes(blob)
    problems = verify(remote, target)
    if problems:
        raise DownloadError(f"{len(problems)} file(s) failed the checksum: {'; '.join(problems)}")
    return [target / file for file, _ in remote.sha256]
