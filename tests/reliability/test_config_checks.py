"""Configs are validated on load: types and ranges, the key and the expected value in the error, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dynmix.cli import app
from dynmix.config import DynMIXConfig, config_from_dict, load_config, save_config
from dynmix.errors import DynMIXError

runner = CliRunner()

BAD = [
    ("[eval]\nknn_k = 0\n", r"\[eval\] knn_k = 0: expected an integer >= 1"),
    ("[train]\nepochs = \"ten\"\n", r"\[train\] epochs = 'ten': expected an integer"),
    ("[train]\nepochs = 2.5\n", r"\[train\] epochs = 2.5: expected an integer"),
    ("[train]\namp = 1\n", r"\[train\] amp = 1: expected true or false"),
    ("[train]\nlr = -0.1\n", r"\[train\] lr = -0.1: expected a number > 0"),
    ("[train]\ntrain_frac = 1.5\n", r"train_frac = 1.5: expected a number > 0 and <= 1"),
    ("[train]\nema_momentum = 0.9\n", r"ema_momentum = 0.9: expected two numbers"),
    ("[loss]\nobjective = \"simclr\"\n", r"objective = 'simclr': expected one of vicreg, sigreg"),
    ("[loss]\ngamma_lo = 3.0\n", r"gamma_lo = 3.0, gamma_hi = 2.0: expected gamma_lo <= gamma_hi"),
    ("[views]\nwindow = 0\n", r"\[views\] window = 0: expected an integer >= 1"),
    ("[views]\nfactors = -1\n", r"factors = -1: expected an integer >= 0"),
    ("[plan]\nmethod = \"grid\"\n", r"method = 'grid': expected one of mppi, cem"),
    ("eval = 3\n", r"\[eval\] = 3: expected a table"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_values_name_the_key_and_what_is_expected(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(DynMIXError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_good_values_load_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text("[train]\nlr = 1\nepochs = 3\nema_momentum = [0.99, 1]\n[views]\nfactors = 0\n"
                    "start = \"2010-01-04\"\n[plan]\ntarget_vol = 0.1\n")
    cfg = load_config(path)
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float) and cfg.train.ema_momentum == (0.99, 1.0)
    assert cfg.views.factors == 0 and cfg.plan.target_vol == 0.1
    save_config(cfg, tmp_path / "saved.toml")
    assert load_config(tmp_path / "saved.toml") == cfg
    assert config_from_dict(DynMIXConfig().to_dict()) == DynMIXConfig()  # every default passes its own checks


@pytest.mark.parametrize("text,message", BAD[:4])
def test_cli_says_it_without_a_traceback(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = runner.invoke(app, ["--home", str(tmp_path / "ws"), "views", "build", "--config", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert "error:" in result.output and "expected" in result.output
