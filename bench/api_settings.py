"""Settings of bench/api.py's server: the project's own, with the bench's URLconf on top.

Only bench/api.py names this module (DJANGO_SETTINGS_MODULE of its gunicorn and of its own
process), so the bare view of bench/api_urls.py is never served by a deployment.
"""

from septrader.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
