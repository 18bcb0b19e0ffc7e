"""The dashboard pages, one file each; app/main.py registers them with st.navigation."""
