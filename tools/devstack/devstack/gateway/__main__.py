"""Run the gateway in the foreground: ``python -m devstack.gateway [--database NAME] [--port N]``
(``devstack up`` runs it in the background; benchmarks run one per cloned database)."""

import argparse

import uvicorn

from devstack import paths
from devstack.gateway.app import create_app
from devstack.gateway.context import Settings
from devstack.gateway.edge import server_config
from devstack.gc_tuning import freeze_imports

parser = argparse.ArgumentParser(prog="python -m devstack.gateway")
parser.add_argument("--database", default=paths.DATABASE, help="database to serve (default: %(default)s)")
parser.add_argument("--port", type=int, default=paths.API_PORT, help="loopback port (default: %(default)s)")
args = parser.parse_args()
app = create_app(Settings.from_stack(database=args.database))
freeze_imports()
uvicorn.Server(server_config(app, host=paths.HOST, port=args.port, log_level="warning")).run()
