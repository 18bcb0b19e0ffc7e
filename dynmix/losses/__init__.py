"""Self-supervised losses: VICReg with a dynamic variance target, SIGReg, and DDP-aware gathers."""

from dynmix.losses.distributed import all_reduce_sum, gather_cat, is_distributed, rank, world_size
from dynmix.losses.sigreg import SIGReg, sigreg
from dynmix.losses.variance_target import STRATEGIES, VarianceTarget
from dynmix.losses.vicreg import VICRegLoss, covariance_loss, invariance_loss, variance_loss, vicreg_loss

__all__ = [
    "STRATEGIES",
    "SIGReg",
    "VICRegLoss",
    "VarianceTarget",
    "all_reduce_sum",
    "covariance_loss",
    "gather_cat",
    "invariance_loss",
    "is_distributed",
    "rank",
    "sigreg",
    "variance_loss",
    "vicreg_loss",
    "world_size",
]
