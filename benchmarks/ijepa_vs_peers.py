"""I-JEPA training-step throughput and peak memory: jepa-lightning vs lightly and stable-pretraining, same model,
batch and masks.

    bash benchmarks/setup_env.sh                 # once: .bench-venv with the peers beside this checkout
    .bench-venv/bin/python benchmarks/ijepa_vs_peers.py --sizes tiny small

One step = student forward on the context, predictor, teacher forward on all tokens, smooth-L1 loss,
backward, AdamW step and EMA update, on random images (data loading excluded; see
``datamodule_throughput.py``). Every implementation gets the same encoder (ViT blocks of the given size,
patch embedding, no class token), the same predictor (width ``D / 4`` so that lightly's torchvision
predictor, whose MLP is as wide as the encoder, matches the usual ``4 x`` ratio; 6 blocks) and exactly the
same masks: a fixed cycle of I-JEPA multi-block masks drawn once by :class:`MultiBlockMaskSampler` (4 targets;
lightly's default collator would leave only 5-6 context tokens on an 8 x 8 grid). Mask sampling is left out
of every step (lightly samples in its collator); ``jepa_overhead.py`` measures ours.

Implementations:
- ``jepa-lightning``: :class:`IJEPA` with the optimiser its ``configure_optimizers`` builds.
- ``lightly (timm)``: ``MaskedVisionTransformerTIMM`` + ``IJEPAPredictorTIMM``, ``update_momentum``, AdamW.
- ``lightly (torchvision)``: lightly's documented example: ``IJEPABackbone`` (torchvision ViT, which adds a
  class token to every pass) + ``IJEPAPredictor``, ``apply_masks`` / ``repeat_interleave_batch``.
- ``stable-pretraining``: its ``methods.IJEPA`` (timm ViT, ``FlexibleTransformer`` predictor, its EMA update), fed
  our masks. It predicts the concatenated target blocks in one predictor pass, ``B x (context + 4 T)`` tokens,
  where the paper (and ours and lightly) runs ``4 B x (context + T)``: its predictor does less work by design.
- ``jepa-lightning (joint targets)`` (``--joint``): ours with ``JEPAPredictor(target_groups="joint")``, the same
  one-pass prediction of every block as stable-pretraining (not the paper's objective).
"""

from __future__ import annotations

import argparse
import copy
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from harness import add_comparison_arguments, compare, dump_json, print_table, timm_vit

from jepa_lightning.masks import MaskSampler, MultiBlockMaskSampler, mask_generator
from jepa_lightning.nn import VIT_SIZES, JEPAPredictor, TransformerEncoder
from jepa_lightning.tokenizers import InputSpec, TokenLayout, grid_coords

NUM_MASK_SETS = 8
PREDICTOR_DEPTH = 6
MOMENTUM = 0.996
DTYPES = {"fp32": None, "bf16": torch.bfloat16}


class CycledMasks(MaskSampler):
    """Hands out a fixed list of precomputed (context, targets) pairs in turn."""

    def __init__(self, masks: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.masks = masks
        self.calls = 0

    def __call__(
        self,
        layout: TokenLayout,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str,
        progress: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        context, targets = self.masks[self.calls % len(self.masks)]
        self.calls += 1
        return context, targets


def matched_masks(grid: int, batch_size: int, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    layout = TokenLayout("grid", (grid, grid), grid_coords((grid, grid)))
    sampler = MultiBlockMaskSampler()
    return [sampler(layout, batch_size, mask_generator(0, step, 0, "cpu"), device) for step in range(NUM_MASK_SETS)]


def autocast(device: torch.device, precision: str) -> Any:
    dtype = DTYPES[precision]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def ours(
    device: torch.device,
    size: str,
    image_size: int,
    patch_size: int,
    batch_size: int,
    precision: str,
    torch_compile: bool = False,
    target_groups: str = "separate",
):
    from jepa_lightning.methods import IJEPA

    width, _, heads = VIT_SIZES[size]
    grid = image_size // patch_size
    model = IJEPA(
        encoder=TransformerEncoder.from_size(size),
        patch_size=patch_size,
        predictor_dim=width // 4,
        predictor_depth=PREDICTOR_DEPTH,
        predictor_heads=heads,
        predictor=None
        if target_groups == "separate"
        else partial(
            JEPAPredictor, predictor_dim=width // 4, depth=PREDICTOR_DEPTH, num_heads=heads, target_groups="joint"
        ),
        mask_sampler=CycledMasks(matched_masks(grid, batch_size, device)),
        input_spec=InputSpec("images", channels=3, image_size=(image_size, image_size)),
        torch_compile=torch_compile,
    ).to(device)
    model.configure_model()  # what the Trainer calls: compiles the blocks when asked
    optimizer = model.build_optimizer()
    images = torch.randn(batch_size, 3, image_size, image_size, device=device)
    generator = mask_generator(0, 0, 0, "cpu")

    def step() -> None:
        with autocast(device, precision):
            loss, _, *_ = model.masked_prediction(images, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.teacher.update(model.student, MOMENTUM)

    return step


def lightly_step(
    encoder: torch.nn.Module,
    encode: Any,
    predictor: torch.nn.Module,
    image_size: int,
    patch_size: int,
    batch_size: int,
    precision: str,
    device: torch.device,
):
    """lightly's I-JEPA step as in its example (targets: layer norm, apply_masks, repeat_interleave_batch), on random
    images and our masks; ``encode(module, images, masks_enc)`` runs a backbone (``masks_enc`` None: every token)."""
    from lightly.models import utils

    target_encoder = copy.deepcopy(encoder).requires_grad_(False)
    images = torch.randn(batch_size, 3, image_size, image_size, device=device)
    masks = matched_masks(image_size // patch_size, batch_size, device)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *predictor.parameters()], lr=1e-4)
    calls = [0]

    def step() -> None:
        context_idx, target_idx = masks[calls[0] % len(masks)]
        calls[0] += 1
        masks_enc = [context_idx]
        masks_pred = list(target_idx.unbind(1))
        with autocast(device, precision):
            with torch.no_grad():
                h = encode(target_encoder, images, None)
                h = F.layer_norm(h, (h.size(-1),))
                h = utils.apply_masks(h, masks_pred)
                h = utils.repeat_interleave_batch(h, len(images), repeat=len(masks_enc))
            z = encode(encoder, images, masks_enc)
            z = predictor(z, masks_enc, masks_pred)
            loss = F.smooth_l1_loss(z, h)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        utils.update_momentum(encoder, target_encoder, MOMENTUM)

    return step


def lightly_timm(device: torch.device, size: str, image_size: int, patch_size: int, batch_size: int, precision: str):
    from lightly.models.modules.ijepa_timm import IJEPAPredictorTIMM
    from lightly.models.modules.masked_vision_transformer_timm import MaskedVisionTransformerTIMM

    width, _, heads = VIT_SIZES[size]
    vit = timm_vit(*VIT_SIZES[size], image_size, patch_size)
    backbone = MaskedVisionTransformerTIMM(vit=vit).to(device)
    predictor = IJEPAPredictorTIMM(
        num_patches=(image_size // patch_size) ** 2,
        depth=PREDICTOR_DEPTH,
        mlp_dim=width,
        predictor_embed_dim=width // 4,
        num_heads=heads,
    ).to(device)
    return lightly_step(
        backbone,
        lambda module, images, masks: module.encode(images, idx_keep=None if masks is None else masks[0]),
        predictor,
        image_size,
        patch_size,
        batch_size,
        precision,
        device,
    )


def lightly_torchvision(
    device: torch.device, size: str, image_size: int, patch_size: int, batch_size: int, precision: str
):
    from lightly.models.modules.ijepa import IJEPABackbone, IJEPAPredictor
    from torchvision.models.vision_transformer import VisionTransformer

    width, depth, heads = VIT_SIZES[size]
    num_patches = (image_size // patch_size) ** 2
    vit = VisionTransformer(
        image_size=image_size,
        patch_size=patch_size,
        num_layers=depth,
        num_heads=heads,
        hidden_dim=width,
        mlp_dim=4 * width,
    )
    backbone = IJEPABackbone.from_vit(vit).to(device)
    predictor = IJEPAPredictor(
        seq_length=num_patches,
        num_layers=PREDICTOR_DEPTH,
        num_heads=heads,
        hidden_dim=width // 4,
        predictor_embed_dim=width // 4,
        num_patches=num_patches,
        mlp_dim=width,
        dropout=0.0,
        attention_dropout=0.0,
    ).to(device)
    return lightly_step(
        backbone,
        lambda module, images, masks: module(images, masks),
        predictor,
        image_size,
        patch_size,
        batch_size,
        precision,
        device,
    )


class FixedIJEPAMasks(torch.nn.Module):
    """Stands in for stable-pretraining's ``IJEPAMasking``: our precomputed masks, every target block's indices
    concatenated (it predicts all blocks in one predictor pass)."""

    def __init__(self, masks: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        super().__init__()
        self.masks = masks
        self.calls = 0

    def forward(self, patches: torch.Tensor, grid_h: int, grid_w: int) -> Any:
        from stable_pretraining.backbone.patch_masking import IJEPAMaskOutput

        context_idx, target_idx = self.masks[self.calls % len(self.masks)]
        self.calls += 1
        return IJEPAMaskOutput(context_idx=context_idx, target_idx=target_idx.flatten(1))


def stable_pretraining(
    device: torch.device, size: str, image_size: int, patch_size: int, batch_size: int, precision: str
):
    """stable-pretraining's ``methods.IJEPA`` on a timm ViT, its predictor given our head count and depth."""
    from stable_pretraining.backbone import FlexibleTransformer
    from stable_pretraining.methods import IJEPA as SPTIJEPA

    width, _, heads = VIT_SIZES[size]
    vit = timm_vit(*VIT_SIZES[size], image_size, patch_size)
    model = SPTIJEPA(vit, predictor_embed_dim=width // 4, predictor_depth=PREDICTOR_DEPTH, ema_decay_start=MOMENTUM)
    model.predictor = FlexibleTransformer(
        input_dim=width,
        hidden_dim=width // 4,
        output_dim=width,
        num_patches=(image_size // patch_size) ** 2,
        depth=PREDICTOR_DEPTH,
        num_heads=heads,
        self_attn=True,
        cross_attn=False,
        add_mask_token=True,
        use_adaln=False,
        num_prefix_tokens=0,
        zero_init_output=False,
    )
    model.masking = FixedIJEPAMasks(matched_masks(image_size // patch_size, batch_size, device))
    model = model.to(device).train()
    optimizer = torch.optim.AdamW([*model.encoder.student.parameters(), *model.predictor.parameters()], lr=1e-4)
    images = torch.randn(batch_size, 3, image_size, image_size, device=device)

    def step() -> None:
        with autocast(device, precision):
            loss = model(images).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.encoder.update_teacher()

    return step


def ours_compiled(device: torch.device, **settings: Any):
    return ours(device, torch_compile=True, **settings)


def ours_joint(device: torch.device, **settings: Any):
    """Ours with ``JEPAPredictor(target_groups="joint")``: every target block in one predictor pass, as
    stable-pretraining (not the paper's objective)."""
    return ours(device, target_groups="joint", **settings)


IMPLEMENTATIONS = {
    "jepa-lightning": ours,
    "lightly (timm)": lightly_timm,
    "lightly (torchvision)": lightly_torchvision,
    "stable-pretraining": stable_pretraining,
}


def add_step_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that shape the benchmarked I-JEPA step (model sizes, images, batch, precision)."""
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"], choices=sorted(VIT_SIZES))
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--patch-size", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", choices=sorted(DTYPES), default="fp32")


def step_settings(args: argparse.Namespace, size: str) -> dict[str, Any]:
    """The keyword arguments of a step factory (:func:`ours`, the peers') for model ``size``, from
    :func:`add_step_arguments`' options."""
    return {
        "size": size,
        "image_size": args.image_size,
        "patch_size": args.patch_size,
        "batch_size": args.batch_size,
        "precision": args.precision,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_step_arguments(parser)
    add_comparison_arguments(parser, warmup=3, steps=10)
    parser.add_argument("--compile", action="store_true", help="also measure ours with torch_compile=True")
    parser.add_argument(
        "--joint", action="store_true", help='also measure ours with the predictor\'s target_groups="joint"'
    )
    args = parser.parse_args()
    implementations = dict(IMPLEMENTATIONS)
    if args.compile:
        implementations["jepa-lightning (compiled)"] = ours_compiled
    if args.joint:
        implementations["jepa-lightning (joint targets)"] = ours_joint

    rows, payload = [], {}
    for size in args.sizes:
        settings = step_settings(args, size)
        results = compare(implementations, args.rounds, args.warmup, args.steps, **settings)
        ours_seconds = results["jepa-lightning"]["seconds"]
        for name, result in results.items():
            rows.append(
                [
                    f"ViT-{size}",
                    name,
                    args.batch_size / result["seconds"],
                    result["seconds"] * 1000,
                    result["gflops"],
                    result["peak_mib"],
                    result["step_mib"],
                    result["seconds"] / ours_seconds,
                ]
            )
        payload[size] = {"settings": settings, "results": results}
    print_table(
        f"I-JEPA step, {args.image_size} px, patch {args.patch_size}, batch {args.batch_size}, {args.precision}",
        ["model", "implementation", "samples/s", "ms/step", "GFLOP/step", "peak MiB", "step MiB", "our speed-up"],
        rows,
    )
    dump_json(args.json, payload)


if __name__ == "__main__":
    main()
