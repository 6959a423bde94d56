"""monitor: watch news feeds, match items against watch rules, deliver signed webhook alerts."""

__version__ = "0.1.0"
