"""The gateway: one ASGI app on 127.0.0.1:54321 serving /rest/v1, /auth/v1, /realtime/v1, /storage/v1."""
