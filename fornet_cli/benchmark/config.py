"""What ``fornet benchmark`` measures: models, runtimes, size, device, runs (a typed, validated config)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..model import get_entry, list_models
from ..model.peers import PEERS

DEFAULT_MODELS: tuple[str, ...] = ("fornet_mbv3", "fornet_r18")
# "auto" is what `fornet predict --runtime auto` runs on the device (fornet_cli/inference/runtime.py), labelled
# with its choice; "compile" is torch.compile of the eager model (compiled during the warm-up, not timed).
RUNTIMES: tuple[str, ...] = ("torch", "onnxruntime", "compile", "auto")
# Top-K sweep: r is the largest branch ratio; the variant's ratios are scaled to it (nesting kept;
# r = 0.4 is the paper's 0.1/0.2/0.3/0.4, r = 0 switches the branches off).
SWEEP_POINTS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True)
class BenchmarkConfig:
    models: tuple[str, ...] = DEFAULT_MODELS  # fornet variants and/or peer names
    peers: bool = False  # add every torchvision peer
    size: tuple[int, int] = (1024, 2048)
    batch: int = 1
    device: str = "cpu"
    runtimes: tuple[str, ...] = ("torch",)
    runs: int = 5
    warmup: int = 1
    threads: int | None = None  # None: torch's current setting
    channels_last: bool = False
    half: bool = False  # CUDA only
    topk_sweep: str | None = None  # a fornet variant to sweep Top-K ratios on (eager PyTorch)
    memory: bool = True
    num_classes: int = 19

    def __post_init__(self) -> None:
        known = set(list_models()) | set(PEERS)
        for name in self.models:
            if name not in known:
                get_entry(name)  # raises UnknownModelError listing the variants
        if not self.models and not self.peers and self.topk_sweep is None:
            raise ConfigError("Nothing to benchmark: give --models, --peers or --topk-sweep.")
        if self.topk_sweep is not None:
            get_entry(self.topk_sweep)
        bad = [r for r in self.runtimes if r not in RUNTIMES]
        if bad or not self.runtimes:
            raise ConfigError(f"Unknown runtime(s) {bad or '(none)'}; choose from {', '.join(RUNTIMES)}.")
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"Unknown device {self.device!r}; use cpu or cuda.")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device cuda, but PyTorch sees no CUDA GPU here. Use --device cpu.")
        if self.half and self.device != "cuda":
            raise ConfigError("--half is for CUDA: float16 on a CPU is slower and not what anyone deploys.")
        if self.runs < 1 or self.warmup < 0 or self.batch < 1:
            raise ConfigError("--runs and --batch must be at least 1, --warmup at least 0.")
        if min(self.size) < 32:
            raise ConfigError(f"Benchmark size {self.size} is too small; use at least 32x32.")
        if self.threads is not None and self.threads < 1:
            raise ConfigError("--threads must be at least 1.")

    @property
    def model_names(self) -> tuple[str, ...]:
        extra = tuple(p for p in PEERS if self.peers and p not in self.models)
        return tuple(self.models) + extra
