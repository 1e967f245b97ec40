"""TS-JEPA for predictive control: Girgis, Valcarce and Bennis, "Time-Series JEPA for Predictive Remote Control under
Capacity-Limited Networks", 2024 (arXiv 2406.04853; no official code)."""

from __future__ import annotations

from typing import Any

from jepa_lightning.inputs import InputSpec
from jepa_lightning.losses.latent import RegressionLoss
from jepa_lightning.methods.trajectory import ActionHead, TargetScope, TrajectoryJEPA
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.nn.predictor import PredictorConditioning


class TSJEPAControl(TrajectoryJEPA):
    """TS-JEPA for predictive control: a window of sensor readings is encoded into an embedding, a predictor given
    the commands predicts the embedding of the next window, and a semantic actor maps embeddings to commands.

    The sensor window is ``x`` (the ``history`` last steps of a trajectory window, in patches of ``patch_length``
    steps); the next window is ``future`` (``horizon`` steps), encoded alone by the EMA target encoder
    (``target_scope="future"``); the predictor (:class:`~jepa_lightning.nn.JEPAPredictor`) is conditioned on the
    ``horizon`` commands applied in between (``predictor_conditioning="concat"``: concatenated to its queries); the
    semantic actor, an MLP on the mean of the window's tokens, predicts the command at the current step
    (``action_steps=1``) and is trained on detached embeddings (``detach_action_head``), so the encoder learns from
    the prediction alone. On :class:`~datamodules.trajectories.TrajectoryDataModule` (CartPole by default, the paper's
    system).

    Defaults: encoder 128 wide, 2 layers, 4 heads, patches of 2 steps; predictor 64 wide, 2 layers; actor 256 hidden
    units; EMA 0.996 -> 1, L1 on layer-normed targets, the I-JEPA optimiser.

    Not checked against code: the paper publishes none (as of this writing), so the recipe follows its text.
    Unconfirmed: the sizes, the loss, the EMA schedule and the optimiser (from the JEPA family's defaults). Deviations:
    the sensor windows are the simulator's states (the paper also encodes rendered frames); the semantic actor is
    trained by imitating the logged commands (the scripted expert's), in the same run, on detached embeddings;
    the predictor predicts the next window's tokens (their mean is the next window's embedding) rather than one
    pooled vector. The paper's channel-aware scheduling and remote-control loop are outside this library.
    """

    def __init__(
        self,
        encoder: TransformerEncoder | None = None,
        patch_length: int = 2,
        predictor_dim: int = 64,
        predictor_depth: int = 2,
        predictor_conditioning: PredictorConditioning = "concat",
        target_scope: TargetScope = "future",
        action_head: ActionHead = "mlp",
        action_steps: int | None = 1,
        action_hidden: int = 256,
        action_weight: float = 1.0,
        detach_action_head: bool = True,
        loss: RegressionLoss = "l1",
        ema_momentum: float = 0.996,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is 128 wide, 2 layers, 4 heads; ``kwargs``: the arguments of
        :class:`~jepa_lightning.methods.trajectory.TrajectoryJEPA` and :class:`JEPA`."""
        super().__init__(
            encoder=encoder,
            patch_length=patch_length,
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            predictor_conditioning=predictor_conditioning,
            target_scope=target_scope,
            action_head=action_head,
            action_steps=action_steps,
            action_hidden=action_hidden,
            action_weight=action_weight,
            detach_action_head=detach_action_head,
            loss=loss,
            ema_momentum=ema_momentum,
            input_spec=input_spec,
            **kwargs,
        )
