"""Feature quality for a fixed budget: I-JEPA and SimCLR on Fashion-MNIST, jepa-lightning vs lightly, same steps.

    apt-get install dataset-fashion-mnist        # Debian's copy of Fashion-MNIST
    bash benchmarks/setup_env.sh                 # once: .bench-venv with the peers beside this checkout
    .bench-venv/bin/python benchmarks/quality_fashion_mnist.py --steps 600

Both implementations train the same ViT (``--width``, ``--depth``, ``--heads``; 4 x 4 patches of 32 x 32 images,
an 8 x 8 grid) for the same number of steps on the same batches (one :class:`ImageDataModule`), with the same
AdamW and warmup + cosine learning rate. What differs is each library's model code, ours trained by a Lightning
``Trainer``, lightly's in a plain loop:

- ``ijepa``: a predictor of half the encoder's width, the same masks (I-JEPA multi-block, drawn by our sampler:
  lightly's default collator is sized for 224 px images) and EMA schedule; ours :class:`IJEPA` against lightly's
  ``MaskedVisionTransformerTIMM`` + ``IJEPAPredictorTIMM``. Inputs: random resized crops.
- ``simclr``: two augmented views per image (our datamodule's SimCLR augmentation), a 512 -> 128 projector with
  BatchNorm, NT-Xent at temperature 0.2; ours :class:`SimCLR` on a :class:`PooledTokenBackbone` against a timm
  ViT (mean-pooled) + lightly's ``SimCLRProjectionHead`` and ``NTXentLoss``.

Quality = accuracy on the 10,000 test images of a logistic regression fitted on frozen, mean-pooled embeddings
(I-JEPA: the teacher's) of ``--probe-train`` training images; the random-initialisation column is the same probe
before training.

Weight initialisation decides most of the difference at this small size, so both libraries run with each
``--init`` (matched pairs): ``ijepa`` (our default, the paper's: trunc-normal 0.02, residual projections scaled
by depth, in encoder and predictor; applied to lightly's modules by the same functions) and ``xavier`` (ours with
``TransformerEncoder(init="xavier")``, which IJEPA's patch embedding and predictor follow; lightly's I-JEPA as
shipped: a xavier encoder and a predictor with PyTorch's default init, of about xavier's scale; the timm ViT of the
SimCLR pair gets the same function as ours).
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from harness import print_table, timm_vit
from torch import nn
from torch.utils.data import DataLoader

from datamodules import ImageDataModule
from jepa_lightning.callbacks.linear_probe import linear_probe_accuracy
from jepa_lightning.masks import MultiBlockMaskSampler, mask_generator
from jepa_lightning.methods import IJEPA, SimCLR
from jepa_lightning.methods.base import SSLMethod, warmup_cosine
from jepa_lightning.nn import PooledTokenBackbone, TransformerEncoder
from jepa_lightning.nn.init import WEIGHT_INITS, init_transformer
from jepa_lightning.tokenizers import PatchTokenizer2d, TokenLayout, grid_coords

Embed = Callable[[torch.Tensor], torch.Tensor]

FASHION = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SIZE, PATCH_SIZE = 32, 4
LR, WARMUP_START_LR, MIN_LR, WARMUP_FRACTION, WEIGHT_DECAY = 5e-4, 1e-4, 1e-6, 0.1, 0.04
EMA_START = 0.996
SIMCLR_PROJECTOR, SIMCLR_TEMPERATURE = (512, 128), 0.2
METHODS = ("ijepa", "simclr")


def datamodule(batch_size: int, num_views: int | None = None) -> ImageDataModule:
    if not FASHION.exists():
        raise SystemExit(f"{FASHION} not found: apt-get install dataset-fashion-mnist")
    return ImageDataModule(
        path=str(FASHION / "train-images-idx3-ubyte.gz"),
        test_path=str(FASHION / "t10k-images-idx3-ubyte.gz"),
        image_size=IMAGE_SIZE,
        batch_size=batch_size,
        val_fraction=0.0,
        num_views=num_views,
    )


def embeddings(embed: Embed, loader: DataLoader, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    features, labels, seen = [], [], 0
    with torch.no_grad():
        for batch in loader:
            features.append(embed(batch["x"]).float())
            labels.append(batch["y"])
            seen += len(batch["y"])
            if limit is not None and seen >= limit:
                break
    return torch.cat(features).numpy()[:limit], torch.cat(labels).numpy()[:limit]


def probe(embed: Embed, data: ImageDataModule, probe_train: int) -> float:
    train = embeddings(embed, data.eval_dataloader("train"), probe_train)
    return linear_probe_accuracy(train, embeddings(embed, data.eval_dataloader("test")))


OPTIMISATION = {
    "lr": LR,
    "warmup_start_lr": WARMUP_START_LR,
    "min_lr": MIN_LR,
    "warmup_fraction": WARMUP_FRACTION,
    "weight_decay": WEIGHT_DECAY,
    "final_weight_decay": None,
}


def our_ijepa(args: argparse.Namespace, data: ImageDataModule, init: str) -> SSLMethod:
    return IJEPA(
        encoder=TransformerEncoder(embed_dim=args.width, depth=args.depth, num_heads=args.heads, init=init),
        patch_size=PATCH_SIZE,
        predictor_dim=args.width // 2,
        predictor_depth=args.predictor_depth,
        predictor_heads=args.heads,
        mask_sampler=MultiBlockMaskSampler(),
        input_spec=data.input_spec,
        ema_momentum=EMA_START,
        **OPTIMISATION,
    )


def our_simclr(args: argparse.Namespace, data: ImageDataModule, init: str) -> SSLMethod:
    return SimCLR(
        backbone=partial(
            PooledTokenBackbone,
            encoder=TransformerEncoder(embed_dim=args.width, depth=args.depth, num_heads=args.heads, init=init),
            tokenizer=partial(PatchTokenizer2d, patch_size=PATCH_SIZE, init=init),
        ),
        projector_dims=SIMCLR_PROJECTOR,
        temperature=SIMCLR_TEMPERATURE,
        input_spec=data.input_spec,
        **OPTIMISATION,
    )


def ours(args: argparse.Namespace, data: ImageDataModule, init: str, method: str) -> tuple[float, float, float]:
    L.seed_everything(args.seed)
    model = {"ijepa": our_ijepa, "simclr": our_simclr}[method](args, data, init)
    initial = probe(model.embed, data, args.probe_train)
    trainer = L.Trainer(
        max_steps=args.steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    # stable-pretraining, installed beside lightly in .bench-venv, adds its monitoring callbacks to every Trainer
    # through Lightning's callbacks_factory entry point; they would bill their time to our run.
    trainer.callbacks = [c for c in trainer.callbacks if not type(c).__module__.startswith("stable_pretraining")]
    start = time.perf_counter()
    trainer.fit(model, data)
    seconds = time.perf_counter() - start
    return initial, probe(model.embed, data, args.probe_train), seconds


def plain_loop(
    args: argparse.Namespace,
    data: ImageDataModule,
    parameters: list[nn.Parameter],
    loss_of: Callable[[dict, int], torch.Tensor],
    after_step: Callable[[int], None] = lambda step: None,
) -> float:
    """``args.steps`` AdamW steps with our warmup + cosine learning rate over the datamodule's training batches;
    the seconds it took."""
    optimizer = torch.optim.AdamW(parameters, lr=LR, weight_decay=WEIGHT_DECAY)
    warmup = int(WARMUP_FRACTION * args.steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, args.steps, warmup, WARMUP_START_LR, LR, MIN_LR) / LR
    )
    loader = data.train_dataloader()
    step, epoch = 0, 0
    start = time.perf_counter()
    while step < args.steps:
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            if step == args.steps:
                break
            loss = loss_of(batch, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            after_step(step)
            step += 1
        epoch += 1
    return time.perf_counter() - start


def lightly_ijepa(args: argparse.Namespace, data: ImageDataModule, init: str) -> tuple[float, float, float]:
    from lightly.models import utils
    from lightly.models.modules.ijepa_timm import IJEPAPredictorTIMM
    from lightly.models.modules.masked_vision_transformer_timm import MaskedVisionTransformerTIMM

    L.seed_everything(args.seed)
    vit = timm_vit(args.width, args.depth, args.heads, IMAGE_SIZE, PATCH_SIZE, channels=1)
    encoder = MaskedVisionTransformerTIMM(vit=vit)
    predictor = IJEPAPredictorTIMM(
        num_patches=(IMAGE_SIZE // PATCH_SIZE) ** 2,
        depth=args.predictor_depth,
        mlp_dim=args.width,
        predictor_embed_dim=args.width // 2,
        num_heads=args.heads,
    )
    if init == "ijepa":
        init_transformer(vit, vit.blocks, init)
        init_transformer(predictor, predictor.decoder.blocks, init)
        nn.init.trunc_normal_(predictor.decoder.mask_token, std=0.02)
    target = copy.deepcopy(encoder).requires_grad_(False)

    def embed(x: torch.Tensor) -> torch.Tensor:
        return target.encode(x).mean(dim=1)

    sampler = MultiBlockMaskSampler()
    grid = IMAGE_SIZE // PATCH_SIZE
    layout = TokenLayout("grid", (grid, grid), grid_coords((grid, grid)))

    def loss_of(batch: dict, step: int) -> torch.Tensor:
        images = batch["x"]
        context_idx, target_idx = sampler(layout, len(images), mask_generator(0, step, 0, "cpu"), "cpu")
        masks_pred = list(target_idx.unbind(1))
        with torch.no_grad():
            h = F.layer_norm(target.encode(images), (args.width,))
            h = utils.apply_masks(h, masks_pred)
        z = predictor(encoder.encode(images, idx_keep=context_idx), [context_idx], masks_pred)
        return F.smooth_l1_loss(z, h)

    def update_teacher(step: int) -> None:
        utils.update_momentum(encoder, target, EMA_START + (1.0 - EMA_START) * step / args.steps)

    initial = probe(embed, data, args.probe_train)
    seconds = plain_loop(args, data, [*encoder.parameters(), *predictor.parameters()], loss_of, update_teacher)
    return initial, probe(embed, data, args.probe_train), seconds


def lightly_simclr(args: argparse.Namespace, data: ImageDataModule, init: str) -> tuple[float, float, float]:
    from lightly.loss import NTXentLoss
    from lightly.models.modules.heads import SimCLRProjectionHead

    L.seed_everything(args.seed)
    vit = timm_vit(args.width, args.depth, args.heads, IMAGE_SIZE, PATCH_SIZE, channels=1)
    init_transformer(vit, vit.blocks, init)
    network = nn.Sequential(vit, SimCLRProjectionHead(args.width, *SIMCLR_PROJECTOR))
    criterion = NTXentLoss(temperature=SIMCLR_TEMPERATURE)

    def loss_of(batch: dict, step: int) -> torch.Tensor:
        first, second = batch["views"]
        return criterion(network(first), network(second))

    def embed(x: torch.Tensor) -> torch.Tensor:
        return vit.eval()(x)

    initial = probe(embed, data, args.probe_train)
    network.train()
    seconds = plain_loop(args, data, list(network.parameters()), loss_of)
    return initial, probe(embed, data, args.probe_train), seconds


def lightly(args: argparse.Namespace, data: ImageDataModule, init: str, method: str) -> tuple[float, float, float]:
    return {"ijepa": lightly_ijepa, "simclr": lightly_simclr}[method](args, data, init)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--predictor-depth", type=int, default=3)
    parser.add_argument("--probe-train", type=int, default=10_000, help="training images the probe is fitted on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--init", choices=WEIGHT_INITS, nargs="+", default=list(WEIGHT_INITS), help="encoder initialisations to run"
    )
    parser.add_argument("--methods", choices=METHODS, nargs="+", default=list(METHODS))
    args = parser.parse_args()

    rows = []
    for method in args.methods:
        data = datamodule(args.batch_size, num_views=2 if method == "simclr" else None)
        for init in args.init:
            for name, run in (("jepa-lightning", ours), ("lightly", lightly)):
                initial, trained, seconds = run(args, data, init, method)
                rows.append([method, name, init, initial, trained, seconds])
    print_table(
        f"Fashion-MNIST, {args.steps} steps of {args.batch_size}, seed {args.seed}, "
        f"ViT {args.width}/{args.depth}/{args.heads}",
        [
            "method",
            "implementation",
            "encoder init",
            "probe acc. at init",
            "probe acc. after training",
            "training seconds",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
