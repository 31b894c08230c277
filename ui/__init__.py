"""Streamlit-only helpers shared by the pages (navigation, set-up, rendering). Never imported by metrics."""
