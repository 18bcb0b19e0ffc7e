"""The DynMIX Streamlit dashboard (`dynmix dashboard`): entry file main.py, one file per page under pages/.

Only main.py, pages/, components.py and loaders.py import streamlit; charts/, artifacts.py, embedmap.py and
refresh.py are plain functions over frames, testable without a running app.
"""
