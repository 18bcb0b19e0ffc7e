"""Models: the view encoders, the VICReg projector and the two-branch DynMIX model."""

from dynmix.models.dynmix import DynMIX
from dynmix.models.encoders import ExplicitEncoder, ImplicitEncoder, Projector

__all__ = ["DynMIX", "ExplicitEncoder", "ImplicitEncoder", "Projector"]
