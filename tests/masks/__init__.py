"""Mask sampler tests, and a probe that proves sampling has no per-sample Python loop."""

from torch.overrides import TorchFunctionMode


class CountTorchCalls(TorchFunctionMode):
    """Counts torch function calls: a vectorised sampler makes as many for a batch of 2 as for 256."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))
