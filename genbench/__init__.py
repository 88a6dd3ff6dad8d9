"""genbench: the claims of deep-learning generalization papers as executable tests.

The package is layered so that data flows one way:
``data`` -> ``training`` / ``theory`` -> ``analysis`` -> ``ledger`` -> ``report``.
See ``docs/architecture.md`` for the contracts between the layers.
"""

__version__ = "0.1.0"
