"""devstack: a Docker-free local Supabase stand-in (PostgreSQL 15 + REST/Auth/Realtime/Storage gateway)."""
