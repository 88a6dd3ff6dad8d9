"""Top-level conftest: thin on purpose. The claims machinery is the ``genbench`` pytest plugin
(``genbench/pytest_plugin.py``), registered through the ``pytest11`` entry point."""
