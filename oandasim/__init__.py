"""An offline OANDA v20 REST and streaming simulator; run it with `python -m oandasim`."""
