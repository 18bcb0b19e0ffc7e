"""Entry file of the DynMIX dashboard: `streamlit run app/main.py` (or `dynmix dashboard`).

The workspace is $DYNMIX_HOME (else ./data); each page lives in app/screens/ and is registered here.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `import app.…` also works when the package is not installed
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app import loaders  # noqa: E402

# (file, title, icon, url path): the url path is the page's address, e.g. http://127.0.0.1:8501/training
PAGES = (
    ("screens/overview.py", "Overview", ":material/dashboard:", "overview"),
    ("screens/data.py", "Data", ":material/database:", "data"),
    ("screens/training.py", "Training", ":material/model_training:", "training"),
    ("screens/embeddings.py", "Embedding map", ":material/scatter_plot:", "embeddings"),
    ("screens/forecasts.py", "Forecasts", ":material/show_chart:", "forecasts"),
    ("screens/planner.py", "Planner", ":material/account_balance:", "planner"),
)

st.set_page_config(page_title="DynMIX", page_icon=":material/hub:", layout="wide")
page = st.navigation([st.Page(file, title=title, icon=icon, url_path=url, default=(url == "overview"))
                      for file, title, icon, url in PAGES])
with st.sidebar:
    st.caption(f"Workspace: `{loaders.workspace().home}`")
page.run()
