"""Support for allconvnet.py: flags, dataset checks, run records, guards and resume."""
