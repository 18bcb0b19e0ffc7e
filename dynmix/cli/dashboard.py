"""`dynmix dashboard`: start the Streamlit app (app/main.py) on 127.0.0.1 for the workspace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

import dynmix
from dynmix.cli.app import app
from dynmix.cli.common import console, friendly, workspace
from dynmix.errors import DynMIXError
from dynmix.workspace import ENV_VAR, Workspace

ADDRESS = "127.0.0.1"  # never 0.0.0.0: the dashboard is for this machine only


def app_path() -> Path:
    """app/main.py beside the installed package."""
    return Path(dynmix.__file__).resolve().parents[1] / "app" / "main.py"


def die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the parent dies (even by kill -9), so a killed
    `dynmix dashboard` never leaves Streamlit serving. A no-op elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass


def streamlit_command(main: Path, port: int) -> list[str]:
    """The `streamlit run` command line (headless, local address, no usage statistics)."""
    return [
        sys.executable, "-m", "streamlit", "run", str(main),
        "--server.address", ADDRESS,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]


@app.command("dashboard")
@friendly
def dashboard(
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="Port on 127.0.0.1.")] = 8501,
    home: Annotated[Path | None, typer.Option(
        "--home", help="Workspace folder (default: the global --home, else $DYNMIX_HOME, else ./data).",
        show_default=False)] = None,
) -> None:
    """Explore the workspace in the browser: data, training, embedding map, forecasts and planner."""
    ws = Workspace.at(home) if home is not None else workspace()
    main = app_path()
    if not main.is_file():
        raise DynMIXError(f"the dashboard's entry file {main} is missing: expected app/main.py beside the "
                          "dynmix package (install DynMIX from its source tree)")
    env = {**os.environ, ENV_VAR: str(ws.home)}
    console.print(f"DynMIX dashboard on [bold]http://{ADDRESS}:{port}[/] (Ctrl+C stops it)", soft_wrap=True)
    console.print(f"workspace: {ws.home}", soft_wrap=True)
    proc = subprocess.Popen(streamlit_command(main, port), env=env, preexec_fn=die_with_parent)  # noqa: PLW1509
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())  # a terminated dashboard stops its server too
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    if code not in (0, -15):
        raise typer.Exit(code if code > 0 else 1)
