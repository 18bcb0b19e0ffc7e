"""Training: the DynMIX trainer (CPU, GPU, several GPUs), checkpoints, EMA and run folders."""

from dynmix.train.ema import EMA
from dynmix.train.embed import embeddings_frame, export_embeddings
from dynmix.train.job import train
from dynmix.train.runs import latest_run, load_run, new_run_dir, resolve_run
from dynmix.train.trainer import Trainer

__all__ = ["EMA", "Trainer", "embeddings_frame", "export_embeddings", "latest_run", "load_run", "new_run_dir",
           "resolve_run", "train"]
