"""The rosterflow local development stack behind deploy/local/stack.py, one module per role."""
