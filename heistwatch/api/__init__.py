"""The REST API and TAXII 2.1 server (FastAPI), with API tokens, roles, TLP 2.0 markings and an audit log."""

from heistwatch.api.app import create_app
from heistwatch.api.server import run_server

__all__ = ["create_app", "run_server"]
