"""LeJEPA: Balestriero and LeCun, "LeJEPA: Provable and Scalable Self-Supervised Learning Without the Heuristics",
2025 (official code: rbalestr-lab/lejepa)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from jepa_lightning.inputs import ModelInput
from jepa_lightning.losses.joint_embedding import lejepa_loss
from jepa_lightning.methods.joint_embedding import JointEmbedding, view_size


class LeJEPA(JointEmbedding):
    """LeJEPA (Balestriero & LeCun, 2025): SIGReg pushes projections towards an isotropic Gaussian, plus view
    invariance to the mean projection of the global views; no teacher, no stop-gradient.

    Official code: rbalestr-lab/lejepa@eddffdd857a19726342ef6526e01021fb3c32cae (``lejepa/univariate/epps_pulley.py``,
    ``lejepa/multivariate/slicing.py``, the training loop in ``MINIMAL.md``, the recipe in ``README.md``).
    Defaults: ``lambda_`` 0.05 (the paper's; ``MINIMAL.md`` runs 0.02), SIGReg with ``num_slices`` 256 random unit
    directions per step (identical on every rank, seeded by the optimizer step, as the library's
    ``SlicingUnivariateTest`` does), Epps-Pulley on 17 knots over [0, 3]; ``num_views`` 4 views of one size, all of
    them global (``num_global_views=None``), as ``MINIMAL.md``; projector 2048 -> 2048 -> 128 with BatchNorm
    (``MINIMAL.md``'s ``ViTEncoder``); projections not L2-normalised; AdamW, lr 5e-4 with linear warmup from 1% of it
    and a cosine to lr / 1000, weight decay 5e-2 (``README.md``'s recipe for ViTs; 5e-4 for ResNets).
    ``tests/losses/test_official_parity.py`` checks the loss against the re-typed official one.

    Multi-crop (``README.md``'s ImageNet recipe: 2 global views at 224 px, scale (0.3, 1), + 6 local at 98 px, scale
    (0.05, 0.3)): ``num_views=8, num_global_views=2`` with the image datamodule's ``local_views=6``. As the authors'
    library (galilai-group/stable-pretraining@d15ec96d ``stable_pretraining/methods/lejepa.py::LeJEPA``), each size
    is encoded at its own resolution, all views are projected in one pass, and every view is pulled to the mean of
    the global views' projections (``examples/configs/lejepa_multicrop_digits.yaml``). Views of several sizes need
    ``num_global_views``, the global views first.

    Deviations: the defaults keep ``MINIMAL.md``'s single-size views (multi-crop is opt-in); with multi-crop, SIGReg
    stays ``MINIMAL.md``'s mean of per-view statistics and the loss its ``(1 - lambda_) * invariance + lambda_ *
    SIGReg`` (the library tests all views pooled as one sample and adds ``lambda_ * SIGReg`` to the invariance).
    Warmup is a fraction of the run (``warmup_fraction`` 0.1), not ``MINIMAL.md``'s one epoch; ``MINIMAL.md``
    anneals to an absolute ``eta_min=1e-3``, ``README.md`` to lr / 1000 (followed here); biases and normalisation
    parameters are not decayed (``MINIMAL.md`` decays every parameter).
    """

    def __init__(
        self,
        lambda_: float = 0.05,
        num_slices: int = 256,
        projector_dims: Sequence[int] = (2048, 2048, 128),
        num_views: int = 4,
        num_global_views: int | None = None,
        lr: float = 5e-4,
        warmup_start_lr: float = 5e-6,
        min_lr: float = 5e-7,
        weight_decay: float = 5e-2,
        **kwargs: Any,
    ) -> None:
        """``num_global_views``: the invariance centres are the mean of the first ``num_global_views`` views
        (``None``: all); ``kwargs``: the arguments of :class:`JointEmbedding`."""
        if num_global_views is not None and not 1 <= num_global_views <= num_views:
            raise ValueError(f"num_global_views must be in [1, num_views={num_views}], got {num_global_views}")
        super().__init__(
            projector_dims=projector_dims,
            num_views=num_views,
            lr=lr,
            warmup_start_lr=warmup_start_lr,
            min_lr=min_lr,
            weight_decay=weight_decay,
            **kwargs,
        )
        self.lambda_ = lambda_
        self.num_slices = num_slices
        self.num_global_views = num_global_views

    multi_crop = True

    def objective(self, projections: list[Tensor], views: Sequence[ModelInput]) -> tuple[Tensor, dict[str, Tensor]]:
        sizes = [view_size(view) for view in views]
        if len(set(sizes)) > 1:
            globals_ = sizes[: self.num_global_views or len(sizes)]
            if self.num_global_views is None or len(set(globals_)) > 1 or globals_[0] in sizes[len(globals_) :]:
                raise ValueError(
                    f"LeJEPA: multi-crop views (sizes {sizes}) need num_global_views set to the number of global "
                    f"views, which come first and are the only views of their size (num_global_views="
                    f"{self.num_global_views})"
                )
        seed = self.trainer.global_step if self._trainer is not None else 0
        parts = lejepa_loss(
            projections, self.lambda_, num_slices=self.num_slices, seed=seed, num_global_views=self.num_global_views
        )
        return parts.loss, {"invariance": parts.invariance, "sigreg": parts.sigreg}
