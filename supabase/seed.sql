-- Local development data only (`supabase db reset`, `python -m devstack reset`); never pushed.
-- Job kinds are configuration and live in the migrations. Here: two demo users, so the demo and
-- manual SQL sessions have someone to act as.
insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, email_confirmed_at)
values
  ('a0000000-0000-4000-8000-00000000000a', 'authenticated', 'authenticated', 'alice@example.test',
   '{"provider": "email", "providers": ["email"]}', '{"name": "Alice"}', now()),
  ('b0000000-0000-4000-8000-00000000000b', 'authenticated', 'authenticated', 'bob@example.test',
   '{"provider": "email", "providers": ["email"]}', '{"name": "Bob"}', now())
on conflict (id) do nothing;
