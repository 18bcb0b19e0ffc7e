"""The workspace folder HOME: `--home DIR`, else `$DYNMIX_HOME`, else `./data`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "DYNMIX_HOME"
RUN_CONFIG = "config.toml"  # the file that marks a run folder (dynmix.runs.rundir.RunDir owns every run file)


def resolve_home(home: str | Path | None = None) -> Path:
    """Return the workspace path: explicit argument, else $DYNMIX_HOME, else ./data."""
    if home is not None and str(home) != "":
        return Path(home).expanduser().resolve()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    return (Path.cwd() / "data").resolve()


@dataclass(frozen=True)
class Workspace:
    """Paths inside one workspace. Creating the object touches nothing on disk."""

    home: Path

    @classmethod
    def at(cls, home: str | Path | None = None) -> Workspace:
        return cls(resolve_home(home))

    @property
    def store(self) -> Path:
        return self.home / "store"

    @property
    def views(self) -> Path:
        return self.home / "views"

    @property
    def runs(self) -> Path:
        return self.home / "runs"

    def run(self, run_id: str) -> Path:
        return self.runs / run_id

    def list_runs(self) -> list[Path]:
        """Run folders, newest first (by name: run ids start with a UTC timestamp)."""
        if not self.runs.is_dir():
            return []
        return sorted((p for p in self.runs.iterdir() if (p / RUN_CONFIG).exists()), reverse=True)
