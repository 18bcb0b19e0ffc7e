"""Chart builders: each takes polars frames and returns a Plotly figure (no streamlit here)."""
