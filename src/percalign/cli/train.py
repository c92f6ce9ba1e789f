"""``percalign train``: train a zoo model with one of the paper's recipes."""

from __future__ import annotations

import argparse

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from percalign._device import resolve_device
from percalign._settings import add_options, options_from
from percalign.cli._console import err, out
from percalign.cli.options import add_device, add_overwrite
from percalign.errors import ConfigError
from percalign.store import check_output
from percalign.training import TrainConfig, save_checkpoint, train, zoo_dir
from percalign.training.datasets import check_dataset
from percalign.training.trainer import EpochReport
from percalign.training.zoo import valid_name


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a zoo model (standard, adversarial, TRADES, SimCLR)",
        description="Train a model with one of the paper's recipes and save it "
        "to the zoo, where every command can load it by --name.",
    )
    p.add_argument("--name", required=True, help="zoo name to save under")
    add_overwrite(p, help="replace an existing zoo model")
    p.add_argument("--data-root", default=None, help="folder holding the CIFAR files")
    add_device(p)
    add_options(p.add_argument_group("training (TrainConfig)"), TrainConfig)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not valid_name(args.name):
        raise ConfigError(f"--name {args.name!r} must be letters, digits, '.', '_' or '-'.")
    check_output(zoo_dir() / args.name, args.overwrite)  # refuse before training
    device = resolve_device(args.device)
    cfg = TrainConfig(**options_from(TrainConfig, args))
    check_dataset(cfg.dataset, args.data_root)
    given = [name for name in ("eps",) if getattr(args, name) is not None]
    cfg.check_options(given, flag=lambda name: "--" + name.replace("_", "-"))
    bar = Progress(
        TextColumn("train {task.fields[name]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
    )
    with bar:
        task = bar.add_task("train", total=cfg.epochs, name=args.name, loss="-", acc="-")

        def update(r: EpochReport) -> None:
            acc = "-" if r.accuracy is None else f"{r.accuracy:.3f}"
            bar.update(task, completed=r.epoch, loss=f"{r.loss:.4f}", acc=acc)

        net, meta, kept = train(cfg, data_root=args.data_root, progress=update, device=device)
    path = save_checkpoint(args.name, net, meta, kept, overwrite=args.overwrite)
    robust = ", ".join(f"{k} {v:.3f}" for k, v in meta["robust_accuracy"].items())
    label = "linear-probe accuracy" if cfg.is_simclr else "clean accuracy"
    out.print(
        f"{args.name}: {label} {meta['clean_accuracy']:.3f}; robust accuracy {robust}; "
        f"trained in {meta['train_seconds']:.0f} s on {meta['device']}"
    )
    out.print(f"Saved to {path}; load it anywhere as --model {args.name}")
    return 0
