"""Joint-embedding training-step throughput: SimCLR, VICReg, Barlow Twins with a ResNet-18, ours vs lightly and
stable-pretraining.

    bash benchmarks/setup_env.sh                 # once: .bench-venv with the peers beside this checkout
    .bench-venv/bin/python benchmarks/joint_embedding_vs_peers.py --methods simclr vicreg barlow_twins

One step = two augmented views (random tensors here; data loading is measured by
``datamodule_throughput.py``) through backbone + projector, the objective, backward and the AdamW step.
All implementations use the same timm ResNet-18 (CIFAR-style stem at 32 px) and projectors of the same
shape (``--hidden`` wide; SimCLR to 128, VICReg and Barlow Twins 3 layers to ``--hidden``). lightly (as its
examples do) and stable-pretraining (its ``methods`` classes) encode the views one after the other; ours encodes
them in one batched pass. Our ``TimmBackbone`` keeps its weights and inputs in NHWC memory order by default
(``channels_last=True``: the same network and arithmetic); the peers' rows run the NCHW network their examples build,
and the ``(channels_last)`` rows the peers on our NHWC backbone, to show what the memory order alone buys.

The last row per method is the backbone alone (forward and backward of both views with a trivial loss, plus
the optimiser step): the overhead of a method is how much slower its step is than that.
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

import torch
from harness import add_comparison_arguments, compare, dump_json, print_table

from jepa_lightning.nn import TimmBackbone
from jepa_lightning.tokenizers import InputSpec

METHODS = ("simclr", "vicreg", "barlow_twins")


def _spec(image_size: int) -> InputSpec:
    return InputSpec("images", channels=3, image_size=(image_size, image_size))


def _views(batch_size: int, image_size: int, device: torch.device) -> list[torch.Tensor]:
    return [torch.randn(batch_size, 3, image_size, image_size, device=device) for _ in range(2)]


def _backbone(image_size: int, channels_last: bool = False) -> TimmBackbone:
    return TimmBackbone(_spec(image_size), "resnet18", small_input_stem=image_size <= 64, channels_last=channels_last)


def ours(
    device: torch.device,
    method: str,
    image_size: int,
    batch_size: int,
    hidden: int,
    channels_last: bool = True,
):
    from jepa_lightning.methods import BarlowTwins, SimCLR, VICReg

    classes = {"simclr": SimCLR, "vicreg": VICReg, "barlow_twins": BarlowTwins}
    dims = (hidden, 128) if method == "simclr" else (hidden, hidden, hidden)
    model = classes[method](
        backbone=partial(
            TimmBackbone, model_name="resnet18", small_input_stem=image_size <= 64, channels_last=channels_last
        ),
        projector_dims=dims,
        input_spec=_spec(image_size),
    ).to(device)
    optimizer = model.build_optimizer()
    views = _views(batch_size, image_size, device)

    def step() -> None:
        loss, _ = model.objective(model.each_view(model.network, views), views)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def ours_nchw(device: torch.device, **settings: Any):
    """Ours with ``TimmBackbone(channels_last=False)``: the NCHW network, views in one batch."""
    return ours(device, channels_last=False, **settings)


def lightly(
    device: torch.device, method: str, image_size: int, batch_size: int, hidden: int, channels_last: bool = False
):
    from lightly.loss import BarlowTwinsLoss, NTXentLoss, VICRegLoss
    from lightly.models.modules.heads import BarlowTwinsProjectionHead, SimCLRProjectionHead, VICRegProjectionHead

    backbone = _backbone(image_size, channels_last)
    heads = {
        "simclr": lambda: SimCLRProjectionHead(backbone.embed_dim, hidden, 128),
        "vicreg": lambda: VICRegProjectionHead(backbone.embed_dim, hidden, hidden),
        "barlow_twins": lambda: BarlowTwinsProjectionHead(backbone.embed_dim, hidden, hidden),
    }
    criteria = {
        "simclr": lambda: NTXentLoss(temperature=0.1),
        "vicreg": VICRegLoss,
        "barlow_twins": BarlowTwinsLoss,
    }
    network = torch.nn.Sequential(backbone, heads[method]()).to(device)
    criterion = criteria[method]()
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3)
    views = _views(batch_size, image_size, device)

    def step() -> None:
        loss = criterion(network(views[0]), network(views[1]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def stable_pretraining(
    device: torch.device, method: str, image_size: int, batch_size: int, hidden: int, channels_last: bool = False
):
    """stable-pretraining's ``methods.SimCLR`` / ``VICReg`` / ``BarlowTwins`` on the same backbone and projector
    shapes (they encode the views one after the other)."""
    from stable_pretraining.methods import SimCLR as SPTSimCLR
    from stable_pretraining.methods import VICReg as SPTVICReg
    from stable_pretraining.methods.barlow_twins import BarlowTwins as SPTBarlowTwins

    builders = {
        "simclr": lambda: SPTSimCLR(
            _backbone(image_size, channels_last), projector_dims=(hidden, 128), temperature=0.1
        ),
        "vicreg": lambda: SPTVICReg(_backbone(image_size, channels_last), projector_dims=(hidden, hidden, hidden)),
        "barlow_twins": lambda: SPTBarlowTwins(
            _backbone(image_size, channels_last), projector_dims=(hidden, hidden, hidden)
        ),
    }
    model = builders[method]().to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    views = _views(batch_size, image_size, device)

    def step() -> None:
        loss = model(*views).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def backbone_only(device: torch.device, method: str, image_size: int, batch_size: int, hidden: int):
    backbone = _backbone(image_size, channels_last=True).to(device)  # as ours
    optimizer = torch.optim.AdamW(backbone.parameters(), lr=1e-3, fused=True)
    views = torch.cat(_views(batch_size, image_size, device))

    def step() -> None:
        loss = backbone(views).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


IMPLEMENTATIONS = {
    "jepa-lightning": ours,
    "jepa-lightning (NCHW)": ours_nchw,
    "lightly": lightly,
    "lightly (channels_last)": partial(lightly, channels_last=True),
    "stable-pretraining": stable_pretraining,
    "stable-pretraining (channels_last)": partial(stable_pretraining, channels_last=True),
    "backbone alone": backbone_only,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=2048, help="projector width")
    add_comparison_arguments(parser, warmup=2, steps=5)
    args = parser.parse_args()

    rows, payload = [], {}
    for method in args.methods:
        settings = {
            "method": method,
            "image_size": args.image_size,
            "batch_size": args.batch_size,
            "hidden": args.hidden,
        }
        results = compare(IMPLEMENTATIONS, args.rounds, args.warmup, args.steps, **settings)
        ours_seconds = results["jepa-lightning"]["seconds"]
        alone = results["backbone alone"]["seconds"]
        for name, result in results.items():
            seconds = result["seconds"]
            rows.append(
                [
                    method,
                    name,
                    args.batch_size / seconds,
                    seconds * 1000,
                    result["peak_mib"],
                    result["step_mib"],
                    seconds / ours_seconds,
                    f"{100 * (seconds - alone) / seconds:.1f}%",
                ]
            )
        payload[method] = {"settings": settings, "results": results}
    print_table(
        f"Joint-embedding step, ResNet-18, {args.image_size} px, batch {args.batch_size} x 2 views",
        [
            "method",
            "implementation",
            "samples/s",
            "ms/step",
            "peak MiB",
            "step MiB",
            "our speed-up",
            "overhead vs backbone",
        ],
        rows,
    )
    dump_json(args.json, payload)


if __name__ == "__main__":
    main()
