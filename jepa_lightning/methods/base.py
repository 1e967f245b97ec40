"""What every self-supervised method shares: optimiser, schedules, embeddings, prediction."""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning as L
import torch
from timm.models.vision_transformer import Block
from torch import Tensor, nn
from torch.distributed.device_mesh import DeviceMesh

from jepa_lightning.distributed import all_reduce_sum
from jepa_lightning.inputs import InputSpec, ModelInput, model_input
from jepa_lightning.nn.ema import FSDPModule

try:
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor
except ImportError:  # torch < 2.6 keeps FSDP2 and DTensor under private names
    from torch.distributed._composable.fsdp import fully_shard
    from torch.distributed._tensor import DTensor

#: Which network ``jepa-lightning export`` writes: the EMA teacher (``"target"``) or the trained one (``"student"``).
ExportedNetwork = Literal["target", "student"]

#: Devices on which ``torch.optim.AdamW(fused=True)`` runs (CPU since torch 2.4).
FUSED_ADAMW_DEVICES = {"cpu", "cuda"}


def require_input_spec(method: str, input_spec: InputSpec | None) -> InputSpec:
    """``input_spec``, or the error every method that builds its networks from the data gives without it."""
    if input_spec is None:
        raise ValueError(
            f"{method} needs input_spec (what the data looks like): the CLI links it from the datamodule; in Python "
            "pass input_spec=datamodule.input_spec."
        )
    return input_spec


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, start: float, peak: float, end: float) -> float:
    """Linear ramp ``start -> peak`` over ``warmup_steps``, then a cosine from ``peak`` to ``end`` at the end."""
    if step < warmup_steps:
        return start + (peak - start) * step / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return end + (peak - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss, gradient or weight; it stops instead of training (and saving) on NaN."""


def non_finite_names(tensors: dict[str, Tensor], most: int = 5) -> list[str]:
    """Names of the floating-point tensors that hold a NaN or an infinity (at most ``most``)."""
    bad = [name for name, value in tensors.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    return bad[:most]


def non_finite_on_any_rank(value: Tensor) -> bool:
    """Whether ``value`` holds a NaN or an infinity here or on any other rank (one all-reduce under DDP), so that
    every rank takes the same decision."""
    flag = (~torch.isfinite(value)).any().float().reshape(1)
    return bool(all_reduce_sum(flag) > 0)


def no_weight_decay(name: str, parameter: nn.Parameter) -> bool:
    """Biases, norm scales and other 1-D parameters (and learnable tokens) are not decayed."""
    return parameter.ndim <= 1 or name.endswith(".bias") or name.endswith("_token")


class SSLMethod(L.LightningModule):
    """Base of every method: AdamW (no decay on biases / norms), warmup + cosine LR, optional cosine
    weight-decay schedule, ``embed(x) -> (B, D)`` and a ``predict_step`` that returns embeddings.

    The defaults are I-JEPA's (lr 1e-3 after a linear warmup from 2e-4 over 40 of 300 epochs, cosine to
    1e-6; weight decay rising 0.04 -> 0.4; ``betas`` and ``adam_eps`` are AdamW's, torch's defaults). Schedules
    are functions of the optimizer step, so a resumed run follows the same curve. ``schedule_horizon`` stretches the
    cosines of both over that many times the run (V-JEPA's ``ipe_scale`` 1.25: the run stops before they reach their
    final values); the warmup stays a fraction of the run itself. Subclasses implement :meth:`embed` and
    ``training_step``; ``num_views`` says how many augmented views the method needs from the datamodule (0: only
    ``batch["x"]``).

    ``torch_compile=True`` compiles :meth:`compile_targets` with ``torch.compile`` (``compile_backend``, e.g.
    ``"aot_eager"`` to debug) when the trainer configures the model; weights and checkpoints are unchanged.

    Divergence: a non-finite training loss stops the run at once with :class:`DivergenceError` (before its
    backward pass, so the weights stay those of the last finite step), naming the step and what to try; with
    ``stop_on_nonfinite_gradients`` a non-finite gradient does too (not under ``16-mixed``, whose loss scaler skips
    such steps by design). A checkpoint whose weights are not finite is never written. The check reads one scalar
    per step (and, under DDP, all-reduces it, so every rank stops at the same step).
    """

    num_views: int = 0

    def __init__(
        self,
        input_spec: InputSpec | None = None,
        lr: float = 1e-3,
        warmup_start_lr: float = 2e-4,
        min_lr: float = 1e-6,
        warmup_fraction: float = 40 / 300,
        weight_decay: float = 0.04,
        final_weight_decay: float | None = 0.4,
        betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-8,
        schedule_horizon: float = 1.0,
        torch_compile: bool = False,
        compile_backend: str = "inductor",
        stop_on_nonfinite_gradients: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
        if lr <= 0 or warmup_start_lr < 0 or min_lr < 0:
            raise ValueError(
                f"learning rates must be lr > 0, warmup_start_lr >= 0, min_lr >= 0; got lr={lr}, "
                f"warmup_start_lr={warmup_start_lr}, min_lr={min_lr}"
            )
        if schedule_horizon < 1.0:
            raise ValueError(f"schedule_horizon must be >= 1 (a multiple of the run), got {schedule_horizon}")
        self.input_spec = input_spec
        self.lr = lr
        self.warmup_start_lr = warmup_start_lr
        self.min_lr = min_lr
        self.warmup_fraction = warmup_fraction
        self.weight_decay = weight_decay
        self.final_weight_decay = final_weight_decay
        self.betas = betas
        self.adam_eps = adam_eps
        self.schedule_horizon = schedule_horizon
        self.torch_compile = torch_compile
        self.compile_backend = compile_backend
        self.stop_on_nonfinite_gradients = stop_on_nonfinite_gradients

    # -- data ----------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Tell the datamodule how many views this method needs, before its loaders exist."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None or not hasattr(datamodule, "num_views"):
            return
        if datamodule.num_views is None:
            datamodule.num_views = self.num_views
        elif datamodule.num_views < self.num_views:
            raise ValueError(
                f"{type(self).__name__} needs {self.num_views} views per sample but the datamodule was "
                f"configured with num_views={datamodule.num_views}: leave num_views unset (the method decides)."
            )

    # -- optimisation -------------------------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return max(int(self.trainer.estimated_stepping_batches), 1)

    @property
    def total_epochs(self) -> int:
        """Epochs the run will take: its optimizer steps over the steps of one epoch (the last may be partial)."""
        accumulation = max(self.trainer.accumulate_grad_batches, 1)
        per_epoch = max(math.ceil(self.trainer.num_training_batches / accumulation), 1)
        return max(math.ceil(self.total_steps / per_epoch), 1)

    @property
    def schedule_steps(self) -> int:
        """Length of the learning-rate and weight-decay cosines: ``schedule_horizon`` times the run."""
        return int(self.schedule_horizon * self.total_steps)

    @property
    def progress(self) -> float:
        """Training progress in [0, 1] (0 outside of fit)."""
        if self._trainer is None:
            return 0.0
        return min(1.0, self.trainer.global_step / self.total_steps)

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Trainable parameters split into decayed and non-decayed groups (frozen ones, e.g. a teacher, left out)."""
        decay, no_decay = [], []
        for name, parameter in self.named_parameters():
            if parameter.requires_grad:
                (no_decay if no_weight_decay(name, parameter) else decay).append(parameter)
        return [
            {"params": decay, "weight_decay": self.weight_decay, "decayed": True},
            {"params": no_decay, "weight_decay": 0.0, "decayed": False},
        ]

    def build_optimizer(self) -> torch.optim.Optimizer:
        """AdamW over :meth:`parameter_groups`, fused into one kernel per step where torch supports it."""
        groups = self.parameter_groups()
        devices = {parameter.device.type for group in groups for parameter in group["params"]}
        fused = devices <= FUSED_ADAMW_DEVICES and all(
            parameter.is_floating_point() for group in groups for parameter in group["params"]
        )
        return torch.optim.AdamW(groups, lr=self.lr, betas=self.betas, eps=self.adam_eps, fused=fused or None)

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.build_optimizer()
        warmup = int(self.warmup_fraction * self.total_steps)
        total = self.schedule_steps

        def lr_factor(step: int) -> float:
            return warmup_cosine(step, total, warmup, self.warmup_start_lr, self.lr, self.min_lr) / self.lr

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def weight_decay_at(self, step: int) -> float:
        """Weight decay for optimizer step ``step``: constant, or a cosine to ``final_weight_decay``."""
        if self.final_weight_decay is None:
            return self.weight_decay
        return warmup_cosine(step, self.schedule_steps, 0, 0.0, self.weight_decay, self.final_weight_decay)

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
        """Set this step's weight decay, step, then run :meth:`after_optimizer_step` (once per real step)."""
        step = self.trainer.global_step
        decay = self.weight_decay_at(step)
        for group in optimizer.param_groups:
            if group.get("decayed"):
                group["weight_decay"] = decay
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        self.after_optimizer_step(step)

    def configure_model(self) -> None:
        """Shard the model with FSDP2 when Lightning's ``ModelParallelStrategy`` gives it a device mesh
        (:meth:`shard`), then compile the :meth:`compile_targets` in place when ``torch_compile`` is set (once per
        module)."""
        if self.device_mesh is not None:
            self.shard(self.device_mesh["data_parallel"])
        if not self.torch_compile:
            return
        for module in self.compile_targets():
            if getattr(module, "_compiled_call_impl", None) is None:
                module.compile(backend=self.compile_backend, dynamic=None)

    def fsdp_units(self) -> list[nn.Module]:
        """The modules the method calls on their own, inner ones first: each becomes one FSDP2 unit (:meth:`shard`).
        Here every child with parameters; a method that calls parts of a child separately lists those parts."""
        return [child for child in self.children() if next(child.parameters(), None) is not None]

    def shard(self, mesh: DeviceMesh) -> None:
        """FSDP2 over ``mesh`` (``fully_shard``): every transformer block of each :meth:`fsdp_units` entry, then the
        entry itself, then whatever child still holds whole parameters. Each rank keeps a shard of every parameter,
        the EMA teacher's included (its update moves each shard towards the student's, see
        :meth:`~jepa_lightning.nn.EMATeacher.update`); a unit's parameters are gathered for its forward pass only,
        which is why a module the method calls outside its parent's forward must be a unit of its own."""
        for unit in [*self.fsdp_units(), *self.children()]:
            for layer in [*(m for m in unit.modules() if isinstance(m, Block)), unit]:
                whole = [p for p in layer.parameters() if not isinstance(p, DTensor)]
                if whole and not isinstance(layer, FSDPModule):
                    fully_shard(layer, mesh=mesh)

    def compile_targets(self) -> list[nn.Module]:
        """What ``torch_compile`` compiles: every transformer block when the model has any (regional compilation:
        one small graph shared by all blocks, student and teacher, and indifferent to how many tokens the context
        keeps), otherwise each child network as a whole."""
        blocks = [module for module in self.modules() if isinstance(module, Block)]
        return blocks or list(self.children())

    def after_optimizer_step(self, step: int) -> None:
        """Hook run exactly once per optimizer step (not on gradient-accumulation micro-steps)."""

    # -- divergence ---------------------------------------------------------------------------------------
    def on_before_backward(self, loss: Tensor) -> None:
        """Stop on a non-finite training loss, on every rank at the same step."""
        if non_finite_on_any_rank(loss.detach()):
            raise DivergenceError(self._divergence_message(f"the training loss is {loss.item()}"))

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """With ``stop_on_nonfinite_gradients``, stop on a NaN / inf gradient (after unscaling)."""
        if not self.stop_on_nonfinite_gradients or self.trainer.precision == "16-mixed":
            return
        gradients = {name: p.grad for name, p in self.named_parameters() if p.grad is not None}
        norms = torch._foreach_norm(list(gradients.values())) if gradients else []
        if non_finite_on_any_rank(torch.stack(norms).sum() if norms else torch.zeros(())):
            bad = non_finite_names(gradients)
            raise DivergenceError(self._divergence_message(f"the gradients of {', '.join(bad)} are not finite"))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to write a checkpoint with non-finite weights (it would replace the last good one)."""
        bad = non_finite_names(checkpoint["state_dict"])
        if bad:
            raise DivergenceError(
                self._divergence_message(f"the weights {', '.join(bad)} are not finite; no checkpoint was written")
            )

    def _divergence_message(self, what: str) -> str:
        trainer = self._trainer
        where = "" if trainer is None else f" at step {trainer.global_step} (epoch {trainer.current_epoch})"
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer is not None and trainer.optimizers else self.lr
        advice = [f"a lower learning rate (--model.init_args.lr; the current one is {lr:.3g})"]
        if trainer is not None and trainer.precision not in ("32-true", "64-true"):
            advice.append(f"full precision (--trainer.precision 32-true instead of {trainer.precision})")
        clip = None if trainer is None else trainer.gradient_clip_val
        advice.append(
            "gradient clipping (--trainer.gradient_clip_val 1.0)" if clip is None else f"clipping below {clip}"
        )
        advice.append("a longer warmup (--model.init_args.warmup_fraction)")
        return (
            f"Training diverged{where}: {what}. The run is stopped; the checkpoints already written hold finite "
            f"weights. Try {', '.join(advice[:-1])} or {advice[-1]}."
        )

    # -- embeddings ---------------------------------------------------------------------------------------
    def embed(self, x: ModelInput) -> Tensor:
        """Representation ``(B, D)`` of a batch of inputs (see :func:`model_input`), used by probes and ``predict``."""
        raise NotImplementedError

    def embed_tokens(self, x: ModelInput) -> tuple[Tensor, Tensor | None]:
        """The frozen token sequence ``(B, N, D)`` behind :meth:`embed` and its validity ``(B, N)`` (False: padding;
        None: every token is real), what attentive probes read; here :meth:`embed` as a single token, methods with
        a token encoder return its tokens."""
        return self.embed(x).flatten(1).unsqueeze(1), None

    @property
    def embed_network(self) -> ExportedNetwork:
        """The network :meth:`embed` reads: the trained one, unless a method says otherwise."""
        return "student"

    def export_network(self, network: ExportedNetwork | None = None) -> nn.Module:
        """The network :meth:`embed` reads, as a module ``x -> (B, D)`` sharing this model's weights, for
        ``jepa-lightning export``: ``network`` picks the EMA teacher (``"target"``) or the trained network
        (``"student"``); None: :attr:`embed_network`."""
        raise NotImplementedError(f"{type(self).__name__} does not say which of its networks is the encoder")

    def resolve_network(self, network: ExportedNetwork | None) -> ExportedNetwork:
        """What :meth:`export_network` exports: ``network``, or :attr:`embed_network` for None, checked."""
        network = network or self.embed_network
        if network not in ("target", "student"):
            raise ValueError(f"network must be 'target' or 'student', got {network!r}")
        return network

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        return {"embedding": self.embed(model_input(batch)), "y": batch["y"]}
