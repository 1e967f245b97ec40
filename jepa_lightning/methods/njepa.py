"""N-JEPA: Qiu, Zhu and Chen, "Improving Joint Embedding Predictive Architecture with Diffusion Noise" (N-JEPA,
"Noise-based JEPA"), arXiv:2507.15216."""

from __future__ import annotations

from typing import Any

from jepa_lightning.methods.ijepa import IJEPA


class NJEPA(IJEPA):
    """N-JEPA: I-JEPA whose predictor sees diffusion-noised position embeddings on its mask tokens.

    Everything is :class:`~jepa_lightning.methods.IJEPA` (ViT encoder, multi-block masks, EMA teacher, smooth-L1 on
    layer-normed targets) except the predictor's mask tokens: in training, each (sample, target group) draws one of
    ``mask_noise_levels`` noise levels and its target positions ``p`` become ``sqrt(a) p + sqrt(1 - a) eps``
    (:meth:`~jepa_lightning.nn.JEPAPredictor.noised`); the context tokens' positions stay clean, and evaluation
    (validation loss, probes) uses clean positions.

    Schedule (our choice; the paper publishes no code and its text does not pin the numbers down): 4 levels at
    ``t = 0, 1/4, 2/4, 3/4`` of improved DDPM's cosine schedule (Nichol and Dhariwal, 2021; openai/improved-diffusion
    ``betas_for_alpha_bar``), ``alpha_bar = 1, 0.85, 0.49, 0.14``
    (:func:`~jepa_lightning.nn.predictor.cosine_noise_schedule`): one level in four is clean I-JEPA, the noisiest
    keeps 38% of the position signal's amplitude, never none (a target slot without a position cannot be told apart
    from its neighbours). The level is uniform over the levels.
    """

    def __init__(self, mask_noise_levels: int = 4, **kwargs: Any) -> None:
        """``mask_noise_levels``: how many noise levels (0: plain I-JEPA); ``kwargs``: the arguments of
        :class:`~jepa_lightning.methods.IJEPA`."""
        if mask_noise_levels < 0:
            raise ValueError(f"mask_noise_levels must be >= 0, got {mask_noise_levels}")
        super().__init__(predictor_mask_noise_levels=mask_noise_levels, **kwargs)
