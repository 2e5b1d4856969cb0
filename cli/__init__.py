"""The `agentos` command line (click). Imports stay light: see tests/test_import_hygiene.py."""
