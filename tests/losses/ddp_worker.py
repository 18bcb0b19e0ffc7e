"""One rank of a 2-process gloo group for test_distributed.py (run as a script), or, imported through
runpy, the single-process reference computation of the same loss on the whole batch.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist

from dynmix.losses import gather_cat, is_distributed, sigreg, vicreg_loss, world_size

SIZES = (5, 9)  # per-rank batch sizes, unequal on purpose (exercises the padding in gather_cat)


def data() -> torch.Tensor:
    return torch.randn(sum(SIZES), 6, generator=torch.Generator().manual_seed(0))  # (B, F)


def compute(x: torch.Tensor) -> dict[str, object]:
    """VICReg on gathered projections + SIGReg with all-reduced statistics; DDP-averaged gradients."""
    torch.manual_seed(0)
    enc_a, enc_b = torch.nn.Linear(6, 4), torch.nn.Linear(6, 4)
    h_a, h_b = enc_a(x), enc_b(x)  # (B_r, K)
    z_a, z_b = gather_cat(h_a), gather_cat(h_b)  # (B, K)
    vic, _ = vicreg_loss(z_a, z_b, gamma=1.5)
    sig = sigreg(h_a, num_slices=8, generator=torch.Generator().manual_seed(3))
    loss = vic + 0.1 * sig
    loss.backward()
    grads = [p.grad for m in (enc_a, enc_b) for p in m.parameters()]
    if is_distributed():  # what DDP does to parameter gradients
        for g in grads:
            assert g is not None
            dist.all_reduce(g)
            g /= world_size()
    return {"loss": loss.detach(), "sigreg": sig.detach(), "gathered": z_a.detach(), "grads": grads}


if __name__ == "__main__":
    rank, world, init_file, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    lo = sum(SIZES[:rank])
    result = compute(data()[lo : lo + SIZES[rank]])
    torch.save(result, out)
    dist.barrier()  # both ranks are done with gloo before either tears it down (a rank leaving early can abort)
    dist.destroy_process_group()
