"""Model SDK adapters behind ``worker.llm.ModelProvider``: Claude (anthropic) and Gemini (google-genai)."""
