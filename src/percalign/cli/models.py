"""``percalign models list|show``."""

from __future__ import annotations

import argparse

from rich.table import Table

from percalign import models
from percalign.cli._console import out
from percalign.errors import WeightsNotFoundError
from percalign.models.inspect import describe_layers
from percalign.training.zoo import zoo_dir


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list models and show their layers")
    cmds = parser.add_subparsers(metavar="ACTION", required=True)
    p_list = cmds.add_parser("list", help="registered models (and, with --all, every source)")
    p_list.add_argument(
        "--all", action="store_true", help="also list every torchvision and timm model name"
    )
    p_list.set_defaults(run=_list)
    p_show = cmds.add_parser("show", help="input size, normalization and layers of a model")
    p_show.add_argument("name")
    p_show.add_argument(
        "--weights",
        default=None,
        help="weights to load (default: the model's own; when they are not "
        "available, the architecture is shown with random weights)",
    )
    p_show.add_argument("--image-size", type=int, default=None)
    p_show.add_argument("--depth", type=int, default=2, help="deepest module level listed")
    p_show.add_argument("--all", action="store_true", help="list every module")
    p_show.set_defaults(run=_show)


def _list(args: argparse.Namespace) -> int:
    table = Table(title="Registered models")
    table.add_column("name")
    table.add_column("about")
    for name, summary in models.registered_summaries().items():
        table.add_row(name, summary)
    out.print(table)
    zoo = [n for n in models.list_models() if n not in models.registered_summaries()]
    if zoo:
        from percalign.training import read_meta

        trained = Table(title=f"Trained zoo models ({zoo_dir()})")
        for col in ("name", "arch", "recipe", "dataset", "clean acc.", "robust acc. (L2 1.0)"):
            trained.add_column(col)
        for name in zoo:
            if "@" in name:
                continue
            meta = read_meta(name)
            l2 = next(iter(meta.get("robust_accuracy", {}).values()), None)
            trained.add_row(
                name,
                meta["arch"],
                meta["recipe"],
                meta["dataset"],
                f"{meta['clean_accuracy']:.3f}",
                "-" if l2 is None else f"{l2:.3f}",
            )
        out.print(trained)
    if args.all:
        for source in models.registry.sources()[1:]:
            names = source.names()
            out.print(f"[bold]{source.name}[/] ({len(names)}): " + ", ".join(names))
    else:
        out.print(
            "Also any torchvision classification model (resnet50, vgg16_bn, vit_b_16...) "
            "and any timm model (timm:NAME); `percalign models list --all` names them."
        )
    return 0


def _penultimate_size(model: models.Model) -> int:
    """Features at the penultimate layer (after token pooling), from one blank image."""
    import torch

    h, w = model.spec.input_size
    with torch.no_grad():
        feats = model.extractor(["penultimate"])(torch.zeros(1, model.spec.in_chans, h, w))
    return int(feats["penultimate"][0].numel())


def _show(args: argparse.Namespace) -> int:
    try:
        model = models.load(args.name, weights=args.weights, image_size=args.image_size)
    except WeightsNotFoundError as exc:
        if args.weights is not None:
            raise
        out.print(f"[yellow]note:[/] {exc} Showing the architecture with random weights.")
        model = models.load(args.name, weights="none", image_size=args.image_size)
    spec = model.spec
    out.print(f"[bold]{spec.name}[/] ({spec.source})")
    out.print(
        f"  input      {spec.in_chans} x {spec.input_size[0]} x {spec.input_size[1]}, "
        "pixels in [0, 1]"
    )
    out.print(
        f"  normalize  mean {tuple(round(m, 4) for m in spec.mean)}, "
        f"std {tuple(round(s, 4) for s in spec.std)}"
    )
    out.print(f"  classes    {spec.num_classes}")
    out.print(f"  weights    {spec.weights} (sha256 {model.weights_sha256[:16]})")
    if spec.head:
        size = _penultimate_size(model)
        out.print(
            f"  penultimate = input of '{spec.head}' ({size} features"
            + (f", token pool {spec.token_pool})" if spec.token_pool != "all" else ")")
        )
    else:
        out.print("  penultimate: none")
    for key, value in spec.extra.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items() if v is not None)
        out.print(f"  {key:<10} {value}")
    table = Table(title="Layers (use the path with --layer)")
    for col in ("path", "module", "output shape"):
        table.add_column(col)
    for info in describe_layers(model):
        if args.all or info.depth <= args.depth:
            shape = "x".join(map(str, info.shape)) if info.shape else "-"
            table.add_row("  " * (info.depth - 1) + info.path, info.kind, shape)
    out.print(table)
    return 0
