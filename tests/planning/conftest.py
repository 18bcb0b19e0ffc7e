"""Seeded toy problems for the planner tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch


@dataclass
class LinearQuadratic:
    """x_{h+1} = A x_h + B u_h; cost Σ_{h=1..H} x_hᵀQx_h + Σ_{h=0..H-1} u_hᵀRu_h (open loop, from x0)."""

    A: torch.Tensor  # (n, n)
    B: torch.Tensor  # (n, m)
    Q: torch.Tensor  # (n, n)
    R: torch.Tensor  # (m, m)
    horizon: int

    def cost(self, x0: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """u (H, S, m) -> costs (S,), rolled out for every sample at once."""
        x = x0.expand(u.shape[1], -1)  # (S, n)
        total = torch.zeros(u.shape[1], dtype=u.dtype, device=u.device)
        for h in range(self.horizon):
            total = total + torch.einsum("sm,mk,sk->s", u[h], self.R, u[h])
            x = x @ self.A.T + u[h] @ self.B.T
            total = total + torch.einsum("sn,nk,sk->s", x, self.Q, x)
        return total

    def optimum(self, x0: torch.Tensor) -> torch.Tensor:
        """Exact minimiser (H, m): stack x = Φ x0 + Γ u and solve (ΓᵀQ̄Γ + R̄) u = −ΓᵀQ̄Φ x0."""
        n, m, H = self.A.shape[0], self.B.shape[1], self.horizon
        A64, B64 = self.A.double(), self.B.double()
        phi = torch.cat([torch.linalg.matrix_power(A64, h + 1) for h in range(H)])  # (H n, n)
        gamma = torch.zeros(H * n, H * m, dtype=torch.float64, device=A64.device)
        for i in range(H):  # x_{i+1} depends on u_j for j <= i through A^{i-j} B
            for j in range(i + 1):
                gamma[i * n : (i + 1) * n, j * m : (j + 1) * m] = torch.linalg.matrix_power(A64, i - j) @ B64
        qbar = torch.block_diag(*[self.Q.double()] * H)
        rbar = torch.block_diag(*[self.R.double()] * H)
        lhs = gamma.T @ qbar @ gamma + rbar
        rhs = -gamma.T @ qbar @ phi @ x0.double()
        return torch.linalg.solve(lhs, rhs).reshape(H, m).to(self.A.dtype)


@pytest.fixture(autouse=True)
def one_thread():
    """The toy problems are tiny: one intra-op thread avoids OpenMP stalls on a busy shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def lq() -> LinearQuadratic:
    torch.manual_seed(0)
    A = torch.tensor([[1.0, 0.1], [0.0, 1.0]])  # a double integrator
    B = torch.tensor([[0.0], [0.1]]) * 5
    return LinearQuadratic(A=A, B=B, Q=torch.eye(2), R=torch.eye(1) * 0.1, horizon=5)
