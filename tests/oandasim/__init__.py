"""Tests of the OANDA v20 simulator, driven through the unmodified oandapyV20 client."""
