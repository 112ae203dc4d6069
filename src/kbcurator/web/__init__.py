"""The review app (``kbcurator serve``): see :mod:`kbcurator.web.app`."""

from kbcurator.web.app import create_app
from kbcurator.web.serve import check_bind, listen, serve

__all__ = ["check_bind", "create_app", "listen", "serve"]
