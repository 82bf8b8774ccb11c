"""pytest fixtures (host side); imported by host_tests/conftest.py."""
