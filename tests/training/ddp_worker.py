"""Run by tests/training/test_train.py under ``torchrun --nproc_per_node=2``: train a few steps with gloo,
then write this rank's weights and the data indices it trained on."""

import os
import sys
from dataclasses import replace
from pathlib import Path

from safetensors.torch import save_file

from fornet_cli.training.config import TrainConfig
from fornet_cli.training.loop import EpochSampler, train

data, out = Path(sys.argv[1]), Path(sys.argv[2])
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
config = TrainConfig(
    model="fornet_mbv3", data="cityscapes", root=str(data), crop=(64, 64), scale_range=(0.75, 1.25), batch=1,
    iters=4, lr=1e-3, warmup_iters=1, val_every=4, ckpt_every=2, log_every=1, workers=0, seed=0, device="cpu",
)
config = replace(config, sync_bn=False)
result = train(config, out / "run")
save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, str(out / f"rank{rank}.safetensors"))
sampler = EpochSampler(6, config.batch, world, rank, config.seed)
(out / f"indices{rank}.txt").write_text(" ".join(map(str, sampler.indices(0))))
