"""dynmix_har: HAR × exp(ridge correction) learns what its features know, is harmless when they know nothing,
and is fitted on the training period only."""

from __future__ import annotations

import numpy as np
import pytest

from dynmix.forecast.compare import qlike_loss
from dynmix.forecast.correction import dynmix_har


def _case(seed: int, informative: bool, n: int = 10, t: int = 600):
    rng = np.random.default_rng(seed)
    har = np.exp(rng.normal(-9, 0.5, size=(n, t)))
    feats = rng.normal(size=(n, t, 4))
    truth = har * np.exp(0.6 * feats[..., 0]) if informative else har * 1.3
    realised = truth * rng.chisquare(5, size=(n, t)) / 5
    world_var = har * np.exp(rng.normal(0, 0.3, size=(n, t)))  # an uninformative world model
    return feats, har, world_var, realised, truth


@pytest.mark.parametrize("loss", ["qlike", "log"])
def test_the_correction_learns_an_informative_feature_out_of_sample(loss: str) -> None:
    feats, har, wv, real, _ = _case(0, informative=True)
    pred, model = dynmix_har(feats, har, wv, real, last=400, horizon=5, loss=loss)
    test = slice(401, None)
    assert qlike_loss(real[:, test], pred[:, test]).mean() < 0.8 * qlike_loss(real[:, test], har[:, test]).mean()
    assert abs(model.beta_[0]) > 5 * np.abs(model.beta_[1:]).max()


def test_with_uninformative_features_it_stays_close_to_a_rescaled_har() -> None:
    feats, har, wv, real, truth = _case(1, informative=False)
    pred, _ = dynmix_har(feats, har, wv, real, last=400, horizon=5)
    test = slice(401, None)
    ratio = pred[:, test] / har[:, test]
    assert np.abs(np.log(ratio) - np.log(1.3)).mean() < 0.1  # the level is learnt, the noise mostly ignored
    assert qlike_loss(real[:, test], pred[:, test]).mean() < qlike_loss(real[:, test], har[:, test]).mean()


def test_realised_variance_after_the_training_period_is_never_used() -> None:
    feats, har, wv, real, _ = _case(2, informative=True)
    pred, _ = dynmix_har(feats, har, wv, real, last=400, horizon=5)
    changed = real.copy()
    changed[:, 396:] *= 10.0  # targets of origins t > last − horizon
    again, _ = dynmix_har(feats, har, wv, changed, last=400, horizon=5)
    assert np.array_equal(pred, again)


def test_with_a_stacking_cut_only_the_rows_after_it_are_fitted() -> None:
    # `first`: the last training date of the world model that made the features; rows up to it are in-sample for
    # that model, so they must not reach the fit
    feats, har, wv, real, _ = _case(4, informative=True)
    pred, model = dynmix_har(feats, har, wv, real, last=400, horizon=5, first=250)
    assert model.rows_ == 10 * (400 - 5 + 1 - 251)
    changed = real.copy()
    changed[:, :251] *= 10.0
    again, _ = dynmix_har(feats, har, wv, changed, last=400, horizon=5, first=250)
    assert np.array_equal(pred, again)


def test_the_penalty_is_chosen_on_every_part_of_the_training_period_not_its_tail() -> None:
    # the feature matters only in the first 80 % of training (a stressed spell); the tail is calm and says "no
    # correction": cross-validation over blocks keeps the feature, a tail-only choice would drop it
    rng = np.random.default_rng(3)
    n, t, last = 10, 700, 600
    har = np.exp(rng.normal(-9, 0.3, size=(n, t)))
    feats = rng.normal(size=(n, t, 3))
    scale = np.where(np.arange(t) < 480, 0.8, 0.0)  # informative early, not at the end of training
    scale[last:] = 0.8  # and informative again on the test period
    truth = har * np.exp(scale * feats[..., 0])
    real = truth * rng.chisquare(5, size=(n, t)) / 5
    pred, model = dynmix_har(feats, har, har, real, last=last, horizon=5, with_world_ratio=False)
    assert np.isfinite(model.alpha_) and abs(model.beta_[0]) > 0.3
    assert set(model.valid_qlike_) >= {0.1, np.inf}  # every candidate scored
    test = slice(last + 1, None)
    assert qlike_loss(real[:, test], pred[:, test]).mean() < 0.8 * qlike_loss(real[:, test], har[:, test]).mean()
