"""Planning: a generic CEM/MPPI planner (`cem`) and the portfolio MPC built on it (`portfolio`)."""

from dynmix.models.risk import Forecast, RiskModel, StaticRiskModel
from dynmix.planning.cem import Planner, PlanResult, shift
from dynmix.planning.portfolio import PortfolioMPC, PortfolioPlan

__all__ = [
    "Forecast", "PlanResult", "Planner", "PortfolioMPC", "PortfolioPlan", "RiskModel", "StaticRiskModel", "shift",
]
