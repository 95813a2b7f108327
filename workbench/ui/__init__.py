"""Gradio tabs, one module each; every module exposes ``create_tab(workbench)``."""
