"""Linli (邻里): wiring of the service — settings, command line, process runtime."""

__version__ = "0.1.0"
