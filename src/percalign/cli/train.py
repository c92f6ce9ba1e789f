"""``percalign train``: train a zoo model with one of the paper's recipes."""

from __future__ import annotations

import argparse

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from percalign._device import resolve_device
from percalign.cli._console import err, out
from percalign.errors import ConfigError
from percalign.models.archs import ARCHS
from percalign.store import check_output
from percalign.training import RECIPES, TrainConfig, save_checkpoint, train, zoo_dir
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
    p.add_argument(
        "--dataset",
        default="digits",
        help="digits | cifar10 | cifar100 | a folder of class sub-folders",
    )
    p.add_argument("--data-root", default=None, help="folder holding the CIFAR files")
    p.add_argument(
        "--image-size",
        type=int,
        default=32,
        help="image side for class folders (digits and CIFAR are 32)",
    )
    p.add_argument("--arch", default="small-cnn", help=" | ".join(ARCHS))
    p.add_argument("--width", type=int, default=None, help="architecture width")
    p.add_argument("--recipe", default="standard", help=" | ".join(RECIPES))
    p.add_argument("--name", required=True, help="zoo name to save under")
    p.add_argument("--overwrite", action="store_true", help="replace an existing zoo model")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--optimizer", default="adam", help="adam | sgd")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--schedule", default="cosine", help="cosine | step | constant")
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    p.add_argument("--augment-set", default="full", help="SimCLR augmentations: full | no-colour")
    p.add_argument("--eps", type=float, default=None, help="attack radius (adversarial recipes)")
    p.add_argument("--norm", default=None, help="attack norm for trades / --adv-views: l2 | linf")
    p.add_argument("--pgd-steps", type=int, default=5)
    p.add_argument("--step-size", type=float, default=None)
    p.add_argument(
        "--eps-warmup",
        type=float,
        default=0.5,
        help="fraction of training over which eps ramps up from 0",
    )
    p.add_argument(
        "--clean-fraction",
        type=float,
        default=0.0,
        help="share of each batch trained clean (adversarial recipes)",
    )
    p.add_argument("--beta", type=float, default=6.0, help="TRADES beta")
    p.add_argument("--temperature", type=float, default=0.5, help="SimCLR temperature")
    p.add_argument("--adv-views", action="store_true", help="SimCLR with adversarial views")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda, cuda:1... (default: auto, the GPU when there is one)",
    )
    p.add_argument("--limit", type=int, default=None, help="train on this many images only")
    p.add_argument(
        "--save-every",
        type=int,
        default=None,
        help="also keep every K-th epoch (load as NAME@EPOCH)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not valid_name(args.name):
        raise ConfigError(f"--name {args.name!r} must be letters, digits, '.', '_' or '-'.")
    check_output(zoo_dir() / args.name, args.overwrite)  # refuse before training
    device = resolve_device(args.device)
    cfg = TrainConfig(
        dataset=args.dataset,
        arch=args.arch,
        recipe=args.recipe,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        schedule=args.schedule,
        weight_decay=args.weight_decay,
        augment=not args.no_augment,
        simclr_augment=args.augment_set,
        eps=args.eps,
        norm=args.norm,
        pgd_steps=args.pgd_steps,
        step_size=args.step_size,
        eps_warmup=args.eps_warmup,
        clean_fraction=args.clean_fraction,
        beta=args.beta,
        temperature=args.temperature,
        adv_views=args.adv_views,
        width=args.width,
        seed=args.seed,
        save_every=args.save_every,
        limit=args.limit,
        image_size=args.image_size,
    )
    check_dataset(cfg.dataset, args.data_root)
    if args.eps is not None and cfg.attack_norm is None:
        raise ConfigError(
            f"--eps has no effect on recipe {cfg.recipe!r}; drop it, or use "
            "adv-l2, adv-linf, trades or simclr --adv-views."
        )
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
