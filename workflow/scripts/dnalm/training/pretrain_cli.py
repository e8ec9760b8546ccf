"""The command line of pretraining: ``dnalm pretrain`` and ``python -m dnalm.training.pretrain``
(several GPUs or processes: ``torchrun ... -m dnalm.training.pretrain``, or the workflow's
launch, dnalm.training.distributed.launch). Pretrain a gpt or mlm model on a
token corpus (dnalm.training.pretrain)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from dnalm.core.errors import ConfigError, DnalmError
from dnalm.core.io import refuse_overwrite
from dnalm.core.log import setup_logging
from dnalm.training.core import dist_info
from dnalm.training.pretrain import run_pretraining
from dnalm.training.run import PretrainRun


def _parse_kv(items: list[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"{what} {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, help="corpus folder (results/corpus/{corpus}/{tok})")
    p.add_argument("--out", required=True, help="model folder to write (results/models/{m})")
    p.add_argument("--objective", choices=("gpt", "mlm"), required=True)
    p.add_argument(
        "--arch", help="architecture (dnalm.kinds.archs; default: opt for gpt, bert for mlm)"
    )
    p.add_argument("--preset", default="tiny", help="architecture preset (kinds.archs.presets_of)")
    p.add_argument(
        "--model-set",
        action="append",
        metavar="KEY=VALUE",
        help="override an architecture key, e.g. n_layer=6 (repeatable)",
    )
    p.add_argument(
        "--train-set",
        action="append",
        metavar="KEY=VALUE",
        help="training setting, e.g. lr=3e-4 max_steps=500 (repeatable)",
    )
    p.add_argument("--config-json", help="JSON file {overrides: {...}, train: {...}}")
    p.add_argument(
        "--loss", default="ce", help="pretraining loss (gpt): ce rc two_d two_d_ce headless"
    )
    p.add_argument(
        "--loss-set", action="append", metavar="KEY=VALUE", help="loss option, e.g. consistency=0.1"
    )
    p.add_argument(
        "--strategy",
        choices=("ddp", "fsdp"),
        default="ddp",
        help="several processes: ddp (whole model on each) or fsdp (FSDP2 shards)",
    )
    p.add_argument("--no-resume", action="store_true", help="start over (deletes checkpoints)")


def run_from_args(args: argparse.Namespace) -> int:
    refuse_overwrite(
        {"--corpus": args.corpus, "--config-json": args.config_json}, {"--out": args.out}, ["--out"]
    )
    overrides, train_cfg, data = {}, {}, {}
    if args.config_json:
        data = json.loads(Path(args.config_json).read_text())
        overrides.update(data.get("overrides") or {})
        train_cfg.update(data.get("train") or {})
    overrides.update(_parse_kv(args.model_set, "--model-set"))
    train_cfg.update(_parse_kv(args.train_set, "--train-set"))
    options = dict(data.get("loss_options") or {})
    options.update(_parse_kv(args.loss_set, "--loss-set"))
    run = run_pretraining(
        PretrainRun(
            corpus_dir=args.corpus,
            out_dir=args.out,
            objective=args.objective,
            preset=args.preset,
            overrides=overrides,
            train=train_cfg,
            resume=not args.no_resume,
            loss=data.get("loss", args.loss),
            loss_options=options,
            arch=args.arch,
            strategy=args.strategy,
        )
    )
    if dist_info()[0] == 0 and "metrics" in run:
        m, b = run["metrics"]["model"], run["metrics"]["baseline"]
        print(
            f"test loss {m['loss']:.4f} ({m['bits_per_nt']:.4f} bits/nt); baseline "
            f"{b['name']} {b['loss']:.4f} ({b['bits_per_nt']:.4f} bits/nt)",
            file=sys.stderr,
        )
    return 0


def register(subparsers) -> None:
    """`dnalm pretrain`: see add_arguments."""
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain a gpt or mlm model on a corpus",
        description=__doc__.split("\n\n")[-1],
    )
    add_arguments(p)
    p.set_defaults(func=run_from_args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dnalm.training.pretrain", description=__doc__.split("\n\n")[-1]
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(logging.INFO)
    try:
        return run_from_args(args)
    except DnalmError as err:
        print(f"dnalm: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
