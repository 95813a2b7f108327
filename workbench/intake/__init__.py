"""Intake of what users actually have (issue 14): cleaning a signature image before eq. 1,
reading pages and PDFs, and finding the signatures on a page."""
