"""Forecasting with a run's world model and JEPA: volatility, density and latent errors against baselines, the
surprise index. Entry point: `dynmix.forecast.service.run_forecast`.
"""
