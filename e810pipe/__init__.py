"""e810pipe: a software model of the Intel E810 (ice) receive pipeline."""

__version__ = "0.1.0"
