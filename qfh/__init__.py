"""QFH: the bit-transition analysis engine of SEP Trader.

The array engine lives in ``qfh.engine`` (NumPy/CuPy, no Django); ``python -m qfh`` is its
command line. This package imports nothing at start-up, so the CLI stays free of Django.
"""
