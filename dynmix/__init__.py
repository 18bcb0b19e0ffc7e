"""DynMIX: company embeddings from an explicit and an implicit view, VICReg with a dynamic variance target.

Shape letters used across the package (fixed once, here):
    B batch, L window, C channels (2 + P), D representation, K projector output, F explicit features,
    P statistical factors of the implicit view, k factor loadings of the world model,
    N companies, T dates, H horizon, S samples, A assets.
"""

from dynmix.errors import DataError, DynMIXError

__version__ = "0.1.0"

__all__ = ["DataError", "DynMIXError", "__version__"]
