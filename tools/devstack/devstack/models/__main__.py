"""``python -m devstack.models``: run the model stand-ins in the foreground."""

from devstack.models.server import main

main()
