"""Verification: the Workbench (typed verify/explain), explanation views, report, calibration and
corpus evaluation. No Gradio here."""
