"""forktrace: make parallel AI-agent work legible."""

__version__ = "0.1.0"
