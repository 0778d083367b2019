"""``fusionrec encode -c CONFIG``: fill the embedding cache for a run config's dataset."""

from __future__ import annotations

import argparse

from fusionrec.cli.main import UserError


def register(subparsers) -> None:
    encode = subparsers.add_parser(
        "encode", help="textualise users and items and cache their LM embeddings",
        description="Reads the config's data and encoder sections (and protocol, if present, "
                    "so the texts are those training will see), encodes the texts the cache "
                    "lacks and reports how many were encoded vs reused.")
    encode.add_argument("-c", "--config", required=True, help="run config YAML")
    encode.add_argument("--data-dir", help="data root (overrides data.data_dir)")
    encode.add_argument("--set", action="append", default=[], metavar="encoder.KEY=VALUE",
                        help="override an encoder setting, e.g. --set encoder.precision=fp32")
    encode.add_argument("--full-dataset", action="store_true",
                        help="encode the full dataset's texts even if a protocol is configured")
    encode.add_argument("--quiet", action="store_true", help="no progress bar")
    encode.set_defaults(func=_encode)


def _override(config, items: list[str]):
    import yaml

    from fusionrec.encoders.config import EncoderConfig

    values = config.to_dict()
    for item in items:
        key, sep, text = item.partition("=")
        section, _, name = key.strip().partition(".")
        if not sep or section != "encoder" or not name:
            raise UserError(f"--set {item!r}: expected encoder.KEY=VALUE")
        values[name] = yaml.safe_load(text) if text.strip() else None
    return EncoderConfig.from_dict(values)


def _dataset(data: dict, data_dir: str | None, protocol: dict | None, full: bool):
    from fusionrec.cli.text_cmd import load_for_cli

    preset, spec = data.get("preset"), data.get("spec")
    if preset and spec:
        raise UserError("data.preset and data.spec must not both be set")
    dataset = load_for_cli(spec or preset or "synthetic", data_dir or data.get("data_dir"))
    excluded = tuple(data.get("exclude_sources") or ())
    if excluded:
        dataset = dataset.without(*excluded)
    if protocol is None or full:
        return dataset, "full dataset"
    from fusionrec.data.protocols import make_split

    name = protocol.get("name", "topk-random")
    seed = int(protocol.get("seed", 0))
    try:
        split = make_split(dataset, name, seed, **dict(protocol.get("params") or {}))
    except ValueError as error:
        raise UserError(f"protocol {name}: {error}") from None
    return split.features, f"training features of protocol {name} (seed {seed})"


def _encode(args: argparse.Namespace) -> int:
    from fusionrec.encoders.config import read_run_sections
    from fusionrec.encoders.features import text_features

    data, config, protocol = read_run_sections(args.config)
    config = _override(config, args.set)
    dataset, what = _dataset(data, args.data_dir, protocol, args.full_dataset)
    print(f"{dataset.name}: {dataset.n_items} items, {dataset.n_users} users ({what})")
    features = text_features(dataset, config, progress=not args.quiet)
    meta = features.meta
    for kind in ("items", "users"):
        stats = meta[kind]
        print(f"{kind}: encoded {stats['encoded']} texts, reused {stats['reused']} "
              f"({stats['texts']} total)")
        if stats["rebuilt"]:
            print(f"  cache was unusable and rebuilt: {stats['rebuilt']}")
    runtime = meta["items"]["runtime"] or meta["users"]["runtime"]
    if runtime:
        agree = runtime.get("agreement_vs_fp32") or {}
        print(f"precision {runtime.get('precision')} ({runtime.get('reason')}); "
              f"min cosine vs fp32 {agree.get('min_cosine', 1.0)}; device {runtime.get('device')}")
    print(f"model {meta['encoder']['model']} ({meta['encoder']['weights_hash']}), dim "
          f"{features.dim}; cache {meta['items']['cache_dir'].rsplit('/', 1)[0]}")
    return 0
