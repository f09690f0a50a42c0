"""Transports behind the ports: supabase-py, psycopg, a folder, and an in-memory fake."""
