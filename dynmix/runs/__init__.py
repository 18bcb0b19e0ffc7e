"""What several stages share, below them all but the models: the run folder (`RunDir`), checkpoints, devices and
processes, thread limits, the time split, the world-model panel, the views stamp, and loading trained models back.
"""
