"""Run the gateway in the foreground: ``python -m devstack.gateway`` (``devstack up`` runs it in the background)."""

import uvicorn

from devstack import paths
from devstack.gateway.app import create_app

uvicorn.run(create_app(), host=paths.HOST, port=paths.API_PORT, log_level="warning", ws="websockets")
