"""How much of a photometric transformation IWM's features and its conditioned predictor keep, with and without the
condition.

    OMP_NUM_THREADS=1 python benchmarks/iwm_equivariance.py --config examples/configs/iwm_digits.yaml --steps 300

The model and data come from a LightningCLI config (extra ``--model.*`` / ``--data.*`` arguments override it); the
script trains it for ``--steps`` steps twice, once as configured (``--model.predictor_conditioning``, ``concat`` in
the example) and once with ``predictor_conditioning=none``, on the same batches and seed, then measures on the
validation images, each under ``--transforms`` random photometric transforms of the datamodule
(:class:`~datamodules.images.PhotometricTransform`, seeded):

- **features R²**: how well a ridge regression reads the transform's parameters back from the teacher's pooled
  features of the transformed image (fitted on half of the validation images, scored on the other half; the mean R²
  over the parameters that vary for the data, e.g. brightness, contrast, blur and solarisation for grey digits). An
  equivariant encoder keeps them (high R²), an invariant one drops them.
- **prediction MRR**: the predictor gets the clean image's masked context and the condition "identity -> transform
  k"; its prediction of the target tokens should retrieve the teacher's tokens of the image under transform k among
  the ``--transforms`` transformed versions of the same image (cosine similarity; mean reciprocal rank, the paper's
  equivariance measure). An unconditioned predictor predicts the same thing for every k: chance level, printed.
- **prediction R²**: the transform's parameters read back (ridge, as above) from the mean predicted token. A
  conditioned predictor passes its condition through even untrained (R² near 1 at initialisation), so this only
  shows whether the prediction carries the transformation at all (an unconditioned one: R² near 0); the MRR shows
  whether it carries it *correctly*.

The first row scores the configured model before training (the random encoder's share of the features R²).
``PYTHONPATH=.`` when the package installed in the environment is another checkout.
"""

from __future__ import annotations

import argparse
import sys

import lightning as L
import numpy as np
import torch
from harness import print_table
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from torch import Tensor
from torchvision.transforms import v2

from datamodules.images import PhotometricTransform
from jepa_lightning.cli import build_cli
from jepa_lightning.losses.latent import normalize_targets
from jepa_lightning.masks.base import mask_generator
from jepa_lightning.methods.iwm import IWM
from jepa_lightning.nn.functional import gather_mask_major


def build(cli_args: list[str], conditioning: str | None) -> tuple[IWM, object]:
    """The config's IWM (its conditioning replaced when ``conditioning`` is given), untrained, and its datamodule."""
    overrides = [] if conditioning is None else [f"--model.predictor_conditioning={conditioning}"]
    cli = build_cli([*cli_args, *overrides, "--trainer.logger=false", "--trainer.callbacks=[]"], run=False)
    L.seed_everything(cli.config.get("seed_everything", 0), verbose=False)
    return cli.model, cli.datamodule


def train(model: IWM, datamodule, steps: int, root: str) -> IWM:
    """``model`` trained for ``steps`` steps on ``datamodule``."""
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=root,
    )
    trainer.fit(model, datamodule=datamodule)
    return model.eval()


def transformed_images(datamodule, transforms: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Validation images, clean ``(N, C, H, W)`` and under ``transforms`` random photometric transforms ``(N, K, C,
    H, W)`` (normalised like the model's inputs), and the transforms' parameters ``(N, K, P)``."""
    datamodule.setup("fit")
    source, indices = datamodule.train_source, datamodule.indices("val")
    resize = v2.Compose([v2.Resize(datamodule.image_size, antialias=True), v2.ToDtype(torch.float32, scale=True)])
    photometric = PhotometricTransform(datamodule.image_size, datamodule.num_channels)
    mean, std = datamodule.normalisation()
    normalize = v2.Normalize(mean, std)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    clean, views, params = [], [], []
    for index in indices.tolist():
        image = resize(source.load(index))
        clean.append(normalize(image))
        drawn = [photometric(image) for _ in range(transforms)]
        views.append(torch.stack([normalize(view) for view, _ in drawn]))
        params.append(torch.stack([p for _, p in drawn]))
    torch.random.set_rng_state(generator_state)
    return torch.stack(clean), torch.stack(views), torch.stack(params)


def ridge_r2(features: np.ndarray, targets: np.ndarray) -> float:
    """Mean R² over the varying columns of ``targets`` of a ridge regression fitted on the first half of the rows
    (standardised features) and scored on the second half."""
    varying = targets.std(axis=0) > 1e-6
    targets = targets[:, varying]
    half = len(features) // 2
    mean, std = features[:half].mean(0), features[:half].std(0) + 1e-6
    scaled = (features - mean) / std
    model = Ridge(alpha=1.0).fit(scaled[:half], targets[:half])
    return float(r2_score(targets[half:], model.predict(scaled[half:]), multioutput="uniform_average"))


@torch.no_grad()
def measure(model: IWM, clean: Tensor, views: Tensor, params: Tensor, batch: int = 64) -> dict[str, float]:
    """Features R², prediction MRR and prediction R² (see the module's docstring)."""
    count, transforms = views.shape[:2]
    features = torch.cat([model.embed(chunk) for chunk in views.flatten(0, 1).split(batch)])
    reciprocal_ranks, predicted_means = [], []
    for start in range(0, count, batch):
        images, transformed, drawn = clean[start : start + batch], views[start : start + batch], params[start:]
        size = len(images)
        tokens = model.student.tokenizer(images)
        generator = mask_generator(0, start, 0, "cpu", 1)
        context_idx, target_idx = model.mask_sampler(tokens.layout, size, generator, images.device)
        context = model.student.encoder(tokens, keep=context_idx)
        encoded, _ = model.encode_targets(transformed.flatten(0, 1))
        encoded = normalize_targets(encoded, model.target_norm).unflatten(0, (size, transforms))
        similarities = []
        for k in range(transforms):
            cond = torch.cat([torch.zeros_like(drawn[:size, k]), drawn[:size, k]], dim=-1)
            condition = {} if model.condition_dim is None else {"cond": cond}
            prediction = model.predictor(context, tokens.layout, context_idx, target_idx, **condition)
            predicted_means.append(prediction.unflatten(0, (-1, size)).mean(dim=(0, 2)))
            row = [gather_mask_major(encoded[:, j], target_idx) for j in range(transforms)]
            similarities.append(
                torch.stack(
                    [torch.cosine_similarity(prediction.flatten(1), target.flatten(1), dim=-1) for target in row], -1
                )
            )  # (M * B, K): row m * B + b against each transform of image b
        for k, scores in enumerate(similarities):
            rank = (scores > scores[:, k : k + 1]).sum(-1) + 1
            reciprocal_ranks.append((1.0 / rank.float()).unflatten(0, (-1, size)).mean(0))
    predicted = torch.stack(
        [torch.cat(predicted_means[k::transforms]) for k in range(transforms)], dim=1
    )  # (N, K, D): batch blocks of K predictions each
    flat_params = params.flatten(0, 1).numpy()
    return {
        "features_r2": ridge_r2(features.numpy(), flat_params),
        "prediction_mrr": float(torch.cat(reciprocal_ranks).mean()),
        "prediction_r2": ridge_r2(predicted.flatten(0, 1).numpy(), flat_params),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps of each model")
    parser.add_argument("--transforms", type=int, default=8, help="random photometric transforms per image")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluation's transforms")
    parser.add_argument("--root", default="/tmp/iwm_equivariance", help="where the trainers may write")
    args, cli_args = parser.parse_known_args(argv)
    rows = []
    for conditioning in (None, "none"):
        model, datamodule = build(cli_args, conditioning)
        clean, views, params = transformed_images(datamodule, args.transforms, args.seed)
        label = model.predictor.conditioning
        if conditioning is None:  # the same measures before training: the random encoder's share
            scores = measure(model.eval(), clean, views, params)
            rows.append(
                [f"{label}, untrained", scores["features_r2"], scores["prediction_mrr"], scores["prediction_r2"]]
            )
        scores = measure(train(model.train(), datamodule, args.steps, args.root), clean, views, params)
        rows.append([label, scores["features_r2"], scores["prediction_mrr"], scores["prediction_r2"]])
    chance = float(np.mean([1.0 / rank for rank in range(1, args.transforms + 1)]))
    print_table(
        f"IWM equivariance after {args.steps} steps ({args.transforms} transforms per image; chance MRR {chance:.3f})",
        ["conditioning", "features R²", "prediction MRR", "prediction R²"],
        rows,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
