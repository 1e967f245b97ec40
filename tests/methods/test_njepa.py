"""N-JEPA: diffusion-style noise on the predictor's mask-token positions (training only), its schedule, the preset."""

import math

import numpy as np
import pytest
import torch

from jepa_lightning.masks import mask_generator
from jepa_lightning.methods import NJEPA
from jepa_lightning.nn import JEPAPredictor, TransformerEncoder
from jepa_lightning.nn.predictor import cosine_noise_schedule
from jepa_lightning.tokenizers import TokenLayout, grid_coords
from tests.conftest import DIGITS_16, tiny_ijepa


# official: openai/improved-diffusion@1bc7bbbdc414d83d4abf2ad8cc1446dc36c4e4d5
# improved_diffusion/gaussian_diffusion.py::get_named_beta_schedule("cosine") and betas_for_alpha_bar
def official_cosine_betas(num_diffusion_timesteps, max_beta=0.999):
    alpha_bar = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    betas = []
    for i in range(num_diffusion_timesteps):
        t1 = i / num_diffusion_timesteps
        t2 = (i + 1) / num_diffusion_timesteps
        betas.append(min(1 - alpha_bar(t2) / alpha_bar(t1), max_beta))
    return np.array(betas)


@pytest.mark.parametrize("levels", [1, 4, 10])
def test_schedule_is_improved_ddpms_cosine_alphas_cumprod_prev(levels):
    """Level k is the official ``alphas_cumprod_prev[k]``: level 0 is clean, level k has k diffusion steps."""
    alphas_cumprod = np.cumprod(1 - official_cosine_betas(levels))
    alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
    np.testing.assert_allclose(cosine_noise_schedule(levels).numpy(), alphas_cumprod_prev, rtol=1e-6)


def _predictor(levels: int) -> JEPAPredictor:
    torch.manual_seed(0)
    return JEPAPredictor(32, predictor_dim=16, depth=1, num_heads=2, mask_noise_levels=levels)


def _inputs(batch: int = 64):
    layout = TokenLayout("grid", (4, 4), grid_coords((4, 4)))
    g = torch.Generator().manual_seed(0)
    context = torch.randn(batch, 6, 32, generator=g)
    context_idx = torch.stack([torch.randperm(16, generator=g)[:6] for _ in range(batch)])
    target_idx = torch.stack([torch.randperm(16, generator=g)[:10].reshape(2, 5) for _ in range(batch)])
    return context, layout, context_idx, target_idx


def test_noise_is_off_by_default_and_in_eval_mode():
    plain, noisy = _predictor(0), _predictor(4)
    args = _inputs()
    torch.testing.assert_close(noisy.eval()(*args), plain.eval()(*args))
    torch.testing.assert_close(plain.train()(*args), plain(*args))  # no randomness without noise
    first, second = noisy.train()(*args), noisy(*args)
    assert not torch.allclose(first, second)


def test_noised_positions_follow_the_levels_signal_and_noise_amplitudes():
    """Per row, ``sqrt(a) p + sqrt(1 - a) eps``: regressing the noised rows on the clean ones recovers sqrt(a) for
    one of the schedule's levels, and every level occurs."""
    predictor = _predictor(4).train()
    alpha_bar = cosine_noise_schedule(4)
    clean = torch.randn(200, 100, 200)
    torch.manual_seed(1)
    noised = predictor.noised(clean)
    slope = (noised * clean).sum(dim=(1, 2)) / clean.square().sum(dim=(1, 2))
    residual = (noised - slope[:, None, None] * clean).std(dim=(1, 2))
    level = (slope[:, None] - alpha_bar.sqrt()).abs().argmin(dim=1)
    torch.testing.assert_close(slope, alpha_bar.sqrt()[level], atol=0.04, rtol=0)
    torch.testing.assert_close(residual, (1 - alpha_bar[level]).sqrt(), atol=0.04, rtol=0)
    assert set(level.tolist()) == {0, 1, 2, 3}


def test_preset_is_ijepa_with_noised_mask_positions(digits_batch):
    model = NJEPA(
        encoder=TransformerEncoder(embed_dim=32, depth=1, num_heads=2),
        patch_size=4,
        predictor_dim=16,
        predictor_depth=1,
        input_spec=DIGITS_16,
    )
    assert model.predictor.mask_noise_levels == 4
    assert tiny_ijepa().predictor.mask_noise_levels == 0
    loss, *_ = model.masked_prediction(digits_batch, mask_generator(0, 0, 0, "cpu"))
    loss.backward()
    assert torch.isfinite(loss) and model.predictor.mask_token.grad is not None
    with pytest.raises(ValueError, match="mask_noise_levels"):
        NJEPA(mask_noise_levels=-1, input_spec=DIGITS_16)
