"""The operator's dashboard: one static page drawing what ``web.data`` gathers, with plotly.js from its wheel."""
