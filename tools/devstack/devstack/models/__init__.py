"""Local stand-ins for the Anthropic Messages API and the Gemini API, with fault injection.

The real ``anthropic`` and ``google-genai`` SDKs talk to them unchanged: point
``base_url`` at the server (see ``server.main``) and drive failures via ``/_standin/*``.
"""

from devstack.models.faults import StandinState
from devstack.models.knobs import FaultSpec
from devstack.models.server import create_app, main

__all__ = ["FaultSpec", "StandinState", "create_app", "main"]
