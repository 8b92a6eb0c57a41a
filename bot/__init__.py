"""Easel: a Discord bot that runs community AI-art workshops."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("easel")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0+unknown"
