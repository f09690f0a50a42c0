"""Model SDK adapters behind ``worker.core.ports.ModelProvider``: Claude (anthropic) and Gemini (google-genai)."""
