"""Training: one engine (`loop`) and its set-up (`session`) for the DynMIX encoders (`job`), the temporal JEPA
(`jepa`) and the world model (`world`); objectives in `pair` and `jepa_objective`.
"""

from dynmix.train.ema import EMA
from dynmix.train.embed import embeddings_frame, export_embeddings
from dynmix.train.job import train
from dynmix.train.loop import Engine, Objective

__all__ = ["EMA", "Engine", "Objective", "embeddings_frame", "export_embeddings", "train"]
