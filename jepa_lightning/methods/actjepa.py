"""ACT-JEPA: Vujinovic and Kovacevic, "ACT-JEPA: Novel Joint-Embedding Predictive Architecture for Efficient Policy
Representation Learning", 2025 (arXiv 2501.14622; no official code)."""

from __future__ import annotations

from typing import Any

from jepa_lightning.inputs import InputSpec
from jepa_lightning.losses.latent import RegressionLoss
from jepa_lightning.methods.trajectory import ActionHead, TargetScope, TrajectoryJEPA
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.nn.predictor import PredictorConditioning


class ACTJEPA(TrajectoryJEPA):
    """ACT-JEPA: imitation learning and a JEPA in one policy, trained end to end.

    A context encoder reads the current observation(s) (``x``, the ``history`` last steps of a trajectory window);
    from its tokens an action decoder predicts the expert's next ``horizon`` actions (action chunking, as ACT: learned
    queries cross-attending to the context, an L1 loss), and a predictor predicts the abstract observation sequence:
    the EMA target encoder's embeddings of the next ``horizon`` observations. The two losses are summed
    (``action_weight`` = 1), and the gradient of both reaches the context encoder. On
    :class:`~datamodules.trajectories.TrajectoryDataModule` (a scripted expert in CartPole / Pendulum, or your logs).

    Defaults: encoder 128 wide, 2 layers, 4 heads, one token per step; predictor 64 wide, 2 layers, told nothing but
    the context (``predictor_conditioning="none"``: the paper predicts the observation sequence from the context, as
    it predicts the action sequence; ``"concat"`` etc. tell it the actions, a world model); action decoder of one
    pre-norm decoder layer; EMA 0.996 -> 1, smooth-L1 on layer-normed targets and the I-JEPA optimiser (AdamW, warmup
    + cosine).

    Not checked against code: the paper publishes none (as of this writing), so the recipe follows its text.
    Unconfirmed, and taken from I-JEPA / ACT where the text is silent: the latent loss (smooth-L1), the target
    normalisation, the EMA schedule, the widths and depths (CPU-sized here; ACT's are 512 wide with 4 encoder and 7
    decoder layers). Deviations: ACT's conditional VAE (a latent style variable for multi-modal human
    demonstrations) is left out, as the scripted expert is deterministic; observations are low-dimensional states,
    one token per step (the paper encodes camera images and proprioception); the target encoder encodes the observed
    and future steps together and the targets are its future tokens (``target_scope="sequence"``, V-JEPA's future
    prediction; ``"future"`` encodes the future steps alone).
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_length: int = 1,
        predictor_dim: int = 64,
        predictor_depth: int = 2,
        predictor_conditioning: PredictorConditioning = "none",
        target_scope: TargetScope = "sequence",
        action_head: ActionHead = "decoder",
        action_steps: int | None = None,
        action_head_depth: int = 1,
        action_weight: float = 1.0,
        loss: RegressionLoss = "smooth_l1",
        ema_momentum: float = 0.996,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is 128 wide, 2 layers, 4 heads; ``action_steps=None`` the whole ``horizon`` (the chunk);
        ``kwargs``: the arguments of :class:`~jepa_lightning.methods.trajectory.TrajectoryJEPA` and :class:`JEPA`."""
        super().__init__(
            encoder=encoder,
            patch_length=patch_length,
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            predictor_conditioning=predictor_conditioning,
            target_scope=target_scope,
            action_head=action_head,
            action_steps=action_steps,
            action_head_depth=action_head_depth,
            action_weight=action_weight,
            detach_action_head=False,
            loss=loss,
            ema_momentum=ema_momentum,
            input_spec=input_spec,
            **kwargs,
        )
