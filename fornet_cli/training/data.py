"""Training data: an order and augmentation that are pure functions of (seed, iteration).

The sampler shuffles each epoch with ``seed + epoch`` and every sample is augmented under an RNG seeded from
(seed, epoch, index). So a run resumed from ``checkpoints/last.pt`` sees exactly the batches an
uninterrupted run would have seen, and loader processes change nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .. import distributed as dist
from ..errors import FornetError, from_loader_worker
from .config import TrainConfig

if TYPE_CHECKING:
    from ..data.classes import ClassSet


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` pairs: a per-epoch permutation (seeded by ``seed + epoch``), cut to whole
    global batches, sharded over ranks (rank r takes positions r, r + world, ...), starting at a batch
    offset so that a resumed run continues mid-epoch."""

    def __init__(self, size: int, batch: int, world: int, rank: int, seed: int) -> None:
        self.size, self.batch, self.world, self.rank, self.seed = size, batch, world, rank, seed
        self.steps_per_epoch = size // (batch * world)
        self.epoch = 0
        self.skip_batches = 0

    def set_position(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip_batches = epoch, skip_batches

    def indices(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed + epoch)
        perm = torch.randperm(self.size, generator=g)[: self.steps_per_epoch * self.batch * self.world]
        return perm[self.rank :: self.world].tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        mine = self.indices(self.epoch)[self.skip_batches * self.batch :]
        return iter([(self.epoch, i) for i in mine])

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.skip_batches) * self.batch


class SeededSamples(Dataset):
    """Wraps a dataset so that item ``(epoch, index)`` is augmented under its own fixed RNG seed."""

    def __init__(self, dataset: Dataset, transform: Callable, seed: int) -> None:
        self.dataset, self.transform, self.seed = dataset, transform, seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key
        sample = self.dataset[index]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.seed * 1_000_003 + epoch * 100_003 + index) % (2**63))
            out = self.transform(sample)
        return out["image"].as_subclass(torch.Tensor), out["mask"].as_subclass(torch.Tensor).long()


class ValSamples(Dataset):
    """The first ``limit`` validation samples (all when None), transformed for evaluation."""

    def __init__(self, dataset: Dataset, transform: Callable, limit: int | None) -> None:
        self.dataset, self.transform = dataset, transform
        self.n = len(dataset) if limit is None else min(limit, len(dataset))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.transform(self.dataset[index])


def label_set(config: TrainConfig) -> ClassSet:
    """The run's classes: a folder data set's classes file, else Cityscapes' 19 training classes."""
    from ..data.classes import cityscapes_classes, resolve_classes
    from ..data.folder import check_root

    if config.data != "folder":
        return cityscapes_classes()
    return resolve_classes(config.classes, check_root(config.root))


def with_label_set(config: TrainConfig) -> tuple[TrainConfig, ClassSet]:
    """The config with as many classes as its label set has (a folder data set's count comes from its file)."""
    classes = label_set(config)
    return replace(config, num_classes=classes.num_classes), classes


def open_datasets(config: TrainConfig, is_main: bool, classes: ClassSet) -> tuple[Dataset, Dataset]:
    from ..data.cityscapes import CityscapesDataset
    from ..data.folder import FolderDataset

    if config.data == "folder":
        return FolderDataset(config.root, "train", classes), FolderDataset(config.root, config.val_split, classes)
    root = _data_root(config, is_main)
    train = CityscapesDataset(root, "train")
    val = CityscapesDataset(root, config.val_split)
    return train, val


def _data_root(config: TrainConfig, is_main: bool) -> str | None:
    if config.data == "cityscapes" or config.root is not None:
        return config.root
    from ..data.synth import default_synth_root, ensure_synth_dataset

    root = default_synth_root(config.synth_train, config.synth_val, config.synth_size, config.seed)
    if is_main:
        ensure_synth_dataset(root, config.synth_train, config.synth_val, config.synth_size, config.seed)
    dist.barrier()
    return str(root)


def batches(
    data: SeededSamples, sampler: EpochSampler, config: TrainConfig, start: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches from iteration ``start`` on; each epoch gets a fresh loader (workers restart)."""
    epoch, skip = divmod(start, sampler.steps_per_epoch)
    while True:
        sampler.set_position(epoch, skip)
        loader = DataLoader(
            data,
            batch_size=config.batch,
            sampler=sampler,
            num_workers=config.workers,
            pin_memory=device.type == "cuda",
            drop_last=True,
            persistent_workers=False,
        )
        try:
            for images, labels in loader:
                yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        except FornetError as exc:  # a bad file read in a loader worker: its message, not its traceback
            raise from_loader_worker(exc) from None
        epoch, skip = epoch + 1, 0
