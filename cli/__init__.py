"""The `nst` command for every role, and the process supervisor behind `nst up`, bench and tests."""
