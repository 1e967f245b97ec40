"""JEPAs on trajectories: the observed steps predict the target network's embeddings of the future ones, optionally
given the actions in between (an action-conditioned world model), and an action head decodes actions from the
context (imitation). ACT-JEPA (``actjepa.py``) and TS-JEPA for predictive control (``tsjepa_control.py``) are
presets of :class:`TrajectoryJEPA`."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from jepa_lightning.inputs import InputSpec, model_condition
from jepa_lightning.losses.latent import latent_regression, normalize_targets
from jepa_lightning.masks.base import mask_generator
from jepa_lightning.masks.series import ForecastMaskSampler
from jepa_lightning.methods.base import require_input_spec
from jepa_lightning.methods.jepa import JEPA, TRAIN_STREAM, VAL_STREAM
from jepa_lightning.nn.encoder import TransformerEncoder
from jepa_lightning.nn.predictor import PredictorConditioning
from jepa_lightning.tokenizers.time_series import ChannelPatchTokenizer

#: What the target network encodes: the whole window, observed and future steps together (V-JEPA's future-frame
#: prediction: the targets are its tokens at the future steps), or the future steps alone (the next window's own
#: embedding).
TargetScope = Literal["sequence", "future"]
TARGET_SCOPES = ("sequence", "future")
#: The action head: ACT's decoder (learned queries cross-attending to the context tokens) or an MLP on the mean of
#: the context tokens (a "semantic actor" on the embedding).
ActionHead = Literal["decoder", "mlp"]
ACTION_HEADS = ("decoder", "mlp")


class ActionDecoder(nn.Module):
    """ACT's action decoder: ``steps`` learned queries through ``depth`` pre-norm transformer decoder layers (self-
    attention among the queries, cross-attention to the context tokens), a final LayerNorm and a linear map to each
    step's action ``(B, steps, action_dim)``."""

    def __init__(self, embed_dim: int, num_heads: int, steps: int, action_dim: int, depth: int = 1) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.zeros(1, steps, embed_dim))
        nn.init.trunc_normal_(self.queries, std=0.02)
        layer = nn.TransformerDecoderLayer(
            embed_dim, num_heads, 4 * embed_dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, depth)
        self.norm = nn.LayerNorm(embed_dim)
        self.out = nn.Linear(embed_dim, action_dim)

    def forward(self, context: Tensor) -> Tensor:
        queries = self.queries.expand(context.shape[0], -1, -1)
        return self.out(self.norm(self.decoder(queries, context)))


class ActionMLP(nn.Module):
    """An MLP from the mean of the context tokens to ``steps`` actions ``(B, steps, action_dim)``: Linear, GELU,
    Linear."""

    def __init__(self, embed_dim: int, hidden: int, steps: int, action_dim: int) -> None:
        super().__init__()
        self.steps = steps
        self.mlp = nn.Sequential(nn.Linear(embed_dim, hidden), nn.GELU(), nn.Linear(hidden, steps * action_dim))

    def forward(self, context: Tensor) -> Tensor:
        return self.mlp(context.mean(dim=1)).unflatten(-1, (self.steps, -1))


class TrajectoryStep(NamedTuple):
    """One pass of the objective: the loss and the diagnostics to log."""

    loss: Tensor
    stats: dict[str, Tensor]


class TrajectoryJEPA(JEPA):
    """A JEPA on windows of trajectories (:class:`~datamodules.trajectories.TrajectoryDataModule`): ``x`` ``(B, C,
    history)`` observed steps, ``future`` ``(B, C, horizon)``, actions ``cond`` ``(B, horizon, A)``.

    The observed and future steps form one series, tokenised by patches of ``patch_length`` steps (one token per
    step by default; :class:`~jepa_lightning.tokenizers.ChannelPatchTokenizer`, a token spans every channel, 1-D
    sin-cos positions over time). The student encodes the observed steps only (the context); the predictor (a
    :class:`~jepa_lightning.nn.JEPAPredictor`) predicts the future steps' tokens of the EMA target network
    (:data:`TargetScope`: encoded with the observed steps, or alone), and, with ``predictor_conditioning`` other
    than ``"none"``, it is told the actions, flattened to ``horizon * A`` values per sample. An action head
    (:data:`ActionHead`) decodes the first ``action_steps`` actions (all ``horizon`` by default) from the student's
    context tokens, trained with an L1 loss weighted by ``action_weight`` (0: none); ``detach_action_head`` keeps its
    gradient out of the encoder (which then learns from the prediction alone). The
    loss is the latent regression plus the action loss (plus a ``regularizer``).

    Validation logs, beside ``val/loss``, how well the future is predicted and the actions decoded, against
    baselines (:meth:`control_metrics`): ``val/next_state_mse`` (the predictions against the normalised targets),
    ``val/persistence_mse`` (the targets of a future in which nothing moves, the last observation repeated, encoded
    by the same target network), ``val/no_action_mse`` (conditioned predictors: the same predictor told zero actions),
    ``val/action_mae`` and ``val/no_action_mae`` (the mean absolute action, the error of always doing nothing).
    :class:`~jepa_lightning.callbacks.ControlReport` prints them at initialisation and after training.
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
        action_hidden: int = 256,
        action_weight: float = 1.0,
        detach_action_head: bool = False,
        input_spec: InputSpec | None = None,
        **kwargs: Any,
    ) -> None:
        """``encoder=None`` is 128 wide, 2 layers, 4 heads; ``kwargs``: the arguments of :class:`JEPA` (not
        ``tokenizer``, ``mask_sampler`` or ``predictor_condition_dim``, which follow from the data)."""
        spec = require_input_spec(type(self).__name__, input_spec)
        spec.require("channels", "length", "horizon", "condition_dim")
        history, horizon = int(spec.length), int(spec.horizon)  # type: ignore[arg-type]  # required above
        if history % patch_length or horizon % patch_length:
            raise ValueError(
                f"patch_length={patch_length} must divide the observed steps (history={history}) and the future "
                f"steps (horizon={horizon}) of the trajectory windows"
            )
        if target_scope not in TARGET_SCOPES:
            raise ValueError(f"target_scope must be one of {TARGET_SCOPES}, got {target_scope!r}")
        if action_head not in ACTION_HEADS:
            raise ValueError(f"action_head must be one of {ACTION_HEADS}, got {action_head!r}")
        steps = horizon if action_steps is None else action_steps
        if not 1 <= steps <= horizon:
            raise ValueError(f"action_steps must be in [1, horizon={horizon}], got {action_steps}")
        encoder = encoder or TransformerEncoder(128, 2, 4)
        super().__init__(
            tokenizer=partial(
                ChannelPatchTokenizer, patch_length=patch_length, channel_independent=False, instance_norm=False
            ),
            encoder=encoder,
            predictor_dim=predictor_dim,
            predictor_depth=predictor_depth,
            predictor_conditioning=predictor_conditioning,
            predictor_condition_dim=horizon * int(spec.condition_dim),  # type: ignore[arg-type]
            mask_sampler=ForecastMaskSampler(horizon / (history + horizon)),
            input_spec=spec,
            **kwargs,
        )
        self.conditioned = predictor_conditioning != "none"
        self.target_scope = target_scope
        self.history_tokens, self.future_tokens = history // patch_length, horizon // patch_length
        self.action_steps = steps
        self.action_weight = action_weight
        self.detach_action_head = detach_action_head
        action_dim = int(spec.condition_dim)  # type: ignore[arg-type]
        self.action_head: nn.Module = (
            ActionDecoder(encoder.embed_dim, encoder.num_heads, steps, action_dim, action_head_depth)
            if action_head == "decoder"
            else ActionMLP(encoder.embed_dim, action_hidden, steps, action_dim)
        )

    # -- the objective ------------------------------------------------------------------------------------
    @staticmethod
    def windows(batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
        """The observed steps, the future steps and the actions of a trajectory batch."""
        future, actions = batch.get("future"), model_condition(batch)
        if future is None or actions is None or actions.ndim != 3:
            raise ValueError(
                "a trajectory JEPA needs batches of windows: batch['x'] (B, C, history), batch['future'] (B, C, "
                "horizon) and the actions batch['cond'] (B, horizon, A), e.g. from datamodules.TrajectoryDataModule"
            )
        return batch["x"], future, actions

    def predict_future(
        self, x: Tensor, future: Tensor, actions: Tensor | None, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """The student's context tokens of the observed steps ``(B, Nc, D)`` and the predictor's predictions of the
        future steps' target tokens ``(B, Nf, D)``, told ``actions`` ``(B, horizon, A)`` when conditioned."""
        tokens = self.student.tokenizer(torch.cat([x, future], dim=-1))
        ((context_idx, target_idx),) = self.mask_sampler.configurations(
            tokens.layout, x.shape[0], generator, tokens.features.device, progress=self.progress
        )
        context = self.student.encoder(tokens, keep=context_idx)
        condition = {"cond": actions.flatten(1)} if self.conditioned and actions is not None else {}
        return context, self.predictor(context, tokens.layout, context_idx, target_idx, **condition)

    @torch.no_grad()
    def future_targets(self, x: Tensor, future: Tensor) -> Tensor:
        """The target network's tokens of the future steps ``(B, Nf, D)``, normalised by ``target_norm``."""
        if self.target_scope == "sequence":
            encoded, _ = self.encode_targets(torch.cat([x, future], dim=-1), final_norm=self.target_final_norm)
            encoded = encoded[:, -self.future_tokens :]
        else:
            encoded, _ = self.encode_targets(future, final_norm=self.target_final_norm)
        return normalize_targets(encoded, self.target_norm)

    def decode_actions(self, context: Tensor) -> Tensor:
        """The action head's first ``action_steps`` actions ``(B, steps, A)`` from the context tokens."""
        return self.action_head(context.detach() if self.detach_action_head else context)

    def trajectory_objective(
        self, batch: dict[str, Any], generator: torch.Generator, regularize: bool = True
    ) -> TrajectoryStep:
        """The latent regression of the future steps' targets plus ``action_weight`` times the L1 loss of the
        decoded actions (plus the ``regularizer`` on the context when ``regularize``)."""
        x, future, actions = self.windows(batch)
        context, prediction = self.predict_future(x, future, actions, generator)
        targets = self.future_targets(x, future)
        latent = latent_regression(prediction, targets, self.loss_kind, self.loss_beta)
        action_loss = F.l1_loss(self.decode_actions(context), actions[:, : self.action_steps])
        loss = latent + self.action_weight * action_loss
        stats = {
            "latent_loss": latent.detach(),
            "action_loss": action_loss.detach(),
            "prediction_std": prediction.detach().float().std(dim=(0, 1)).mean(),
            "target_std": targets.float().std(dim=(0, 1)).mean(),
        }
        if regularize and self.regularizer != "none":
            penalty = self.regularization(context)
            stats["regularizer"] = penalty.detach()
            loss = loss + self.regularizer_weight * penalty
        return TrajectoryStep(loss, stats)

    @torch.no_grad()
    def control_metrics(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """How well the future is predicted and the actions decoded, and their baselines, on one batch (means over
        the batch; see the class docstring): ``next_state_mse``, ``persistence_mse``, ``no_action_mse`` (conditioned
        predictors only), ``action_mae`` and ``no_action_mae``."""
        x, future, actions = self.windows(batch)
        generator = mask_generator(self.mask_seed, 0, 0, "cpu", VAL_STREAM)
        context, prediction = self.predict_future(x, future, actions, generator)
        targets = self.future_targets(x, future)
        still = x[..., -1:].expand_as(future)
        expert = actions[:, : self.action_steps]
        metrics = {
            "next_state_mse": F.mse_loss(prediction, targets),
            "persistence_mse": F.mse_loss(self.future_targets(x, still), targets),
            "action_mae": F.l1_loss(self.decode_actions(context), expert),
            "no_action_mae": expert.abs().mean(),
        }
        if self.conditioned:
            _, blind = self.predict_future(x, future, torch.zeros_like(actions), generator)
            metrics["no_action_mse"] = F.mse_loss(blind, targets)
        return metrics

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        accumulation = max(self.trainer.accumulate_grad_batches, 1)
        micro_batch = self.trainer.global_step * accumulation + batch_idx % accumulation
        generator = mask_generator(self.mask_seed, micro_batch, self.global_rank, "cpu", TRAIN_STREAM)
        step = self.trajectory_objective(batch, generator)
        batch_size = batch["x"].shape[0]
        self.log("train/loss", step.loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=batch_size)
        self.log_dict({f"train/{k}": v for k, v in step.stats.items()}, on_step=True, batch_size=batch_size)
        return step.loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        """``val/loss`` (without the regularizer), the :meth:`control_metrics`, and the embeddings of the observed
        steps for the diagnostic callbacks."""
        generator = mask_generator(self.mask_seed, batch_idx, self.global_rank, "cpu", VAL_STREAM)
        step = self.trajectory_objective(batch, generator, regularize=False)
        batch_size = batch["x"].shape[0]
        self.log("val/loss", step.loss, prog_bar=True, batch_size=batch_size, sync_dist=True)
        metrics = self.control_metrics(batch)
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, batch_size=batch_size, sync_dist=True)
        return {"loss": step.loss, "embedding": self.embed(batch["x"]).float().flatten(1)}
