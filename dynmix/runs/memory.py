"""How many samples a training batch may hold: `[train] max_batch_samples`, or chosen from the device's memory.

A date-blocked batch holds every valid company of its dates; at thousands of companies the default batch's
activations outgrow the machine. When the dates of a batch hold more samples than the cap, the sampler keeps a
share of the companies of each date (`DateBlockSampler`), so every date of the batch stays in it.

The automatic cap is AUTO_SHARE of the memory free on the device (CUDA: `torch.cuda.mem_get_info`; CPU: the
kernel's MemAvailable) divided by an estimate of the training memory of one sample (`bytes_per_sample`, the
activations kept for the backward pass of the default encoders; an over-estimate of the 0.27-0.30 MiB per
sample measured on a CPU with the default model).
"""

from __future__ import annotations

import torch

from dynmix import host
from dynmix.config import ModelConfig, TrainConfig
from dynmix.errors import DynMIXError

AUTO_SHARE = 0.4  # share of the free device memory the automatic cap spends on one batch's activations
MIN_AUTO = 1_024  # the automatic cap never goes below this


def available_bytes(device: torch.device) -> int:
    """Memory free for a new allocation on `device`: CUDA's free bytes, or the host's MemAvailable."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return host.available_bytes()


def bytes_per_sample(model: ModelConfig, window: int) -> int:
    """Estimated training memory of one sample (float32 activations kept for backward, a few per layer)."""
    implicit = 6 * window * model.implicit_width * model.implicit_layers  # conv blocks over the L-day window
    dense = 8 * (model.explicit_hidden + model.projector_hidden + model.projector_dim + model.dim)
    return 4 * (implicit + dense)


def auto_max_batch_samples(device: torch.device, model: ModelConfig, window: int, world_size: int = 1) -> int:
    """The cap from the free memory of this process's device; each of `world_size` ranks holds 1/world_size."""
    per_rank = int(AUTO_SHARE * available_bytes(device)) // bytes_per_sample(model, window)
    return max(MIN_AUTO, per_rank * world_size)


def max_batch_samples(train: TrainConfig, model: ModelConfig, window: int, device: torch.device,
                      world_size: int = 1) -> tuple[int, str]:
    """(cap, how it was chosen): `train.max_batch_samples` when set, else `auto_max_batch_samples`."""
    if train.max_batch_samples is not None:
        if train.max_batch_samples < 1:
            raise DynMIXError(f"train.max_batch_samples = {train.max_batch_samples}: expected a positive number of "
                              "samples (leave it out to choose it from the device's memory)")
        return int(train.max_batch_samples), "set"
    cap = auto_max_batch_samples(device, model, window, world_size)
    return cap, f"auto: {AUTO_SHARE:.0%} of the free memory of {device}"


def embed_dates_per_batch(train: TrainConfig, model: ModelConfig, window: int, n_tickers: int,
                          device: torch.device) -> int:
    """Dates per batch of an embeddings export: 2 x dates_per_batch, fewer when that would hold more than twice
    the training cap of samples (no gradients are kept, so twice the training batch fits).
    """
    cap, _ = max_batch_samples(train, model, window, device)
    return max(1, min(2 * train.dates_per_batch, 2 * cap // max(1, n_tickers)))
