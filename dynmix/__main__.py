"""`python -m dynmix …` (used by torchrun: `torchrun --nproc_per_node N -m dynmix train …`)."""

from dynmix.cli import main

main()
