-- Jobs schema: job kinds (limits per kind), jobs, job events; row-level security and grants.
-- Users read their own rows and write nothing directly (no insert/update/delete grants for anon
-- or authenticated): every write goes through the functions of the following migrations.

create schema if not exists private;  -- helpers and trigger functions; not exposed through the API
revoke all on schema private from public;

grant usage on schema private to service_role;

-- ---------------------------------------------------------------------------------------------
-- job_kinds: one row per kind of job, with its limits. Configuration the API depends on, so it
-- is seeded here (db push does not run seed.sql).
-- ---------------------------------------------------------------------------------------------
create table public.job_kinds (
  kind text primary key check (kind ~ '^[a-z][a-z0-9_]{0,62}$'),
  max_attempts integer not null default 3 check (max_attempts between 1 and 100),
  timeout_seconds integer not null default 300 check (timeout_seconds between 1 and 86400),
  rate_limit_per_minute integer not null default 10 check (rate_limit_per_minute between 1 and 100000),
  max_running_per_user integer not null default 2 check (max_running_per_user between 1 and 100000),
  max_payload_bytes integer not null default 65536 check (max_payload_bytes between 2 and 10485760),
  default_priority integer not null default 0 check (default_priority between -100 and 100),
  heavy boolean not null default false,
  description text not null default ''
);

comment on table public.job_kinds is 'Kinds of job and their limits: attempts, timeout, per-user rate and concurrency, payload size.';

insert into public.job_kinds
  (kind, max_attempts, timeout_seconds, rate_limit_per_minute, max_running_per_user, max_payload_bytes, default_priority, heavy, description)
values
  ('generate_design', 3, 180, 10, 2, 65536, 0, false, 'Prompt + design-system summary -> Figma node tree (Claude)'),
  ('rename_layers', 3, 120, 10, 3, 262144, 10, false, 'Up to 500 layers -> descriptive names (Claude, batched in parallel)'),
  ('generate_edits', 3, 180, 3, 1, 65536, 0, true, 'Streamed copy-edit variants (Claude streaming)'),
  ('generate_image', 2, 180, 3, 1, 16384, 0, true, 'Image generation (Gemini); bytes go to Storage')
on conflict (kind) do nothing;

-- ---------------------------------------------------------------------------------------------
-- jobs
-- ---------------------------------------------------------------------------------------------
create table public.jobs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  kind text not null references public.job_kinds (kind),
  status text not null default 'queued'
    check (status in ('waiting', 'queued', 'running', 'succeeded', 'failed', 'cancelled')),
  priority integer not null default 0 check (priority between -100 and 100),
  payload jsonb not null default '{}'::jsonb check (jsonb_typeof(payload) = 'object'),
  result jsonb,
  error jsonb check (error is null or jsonb_typeof(error) = 'object'),
  progress jsonb not null default '{"percent": 0, "message": null}'::jsonb check (jsonb_typeof(progress) = 'object'),
  attempts integer not null default 0 check (attempts >= 0),
  max_attempts integer not null check (max_attempts >= 1),
  run_at timestamptz not null default now(),
  lease_expires_at timestamptz,
  worker_id text,
  idempotency_key text check (idempotency_key is null or length(idempotency_key) between 1 and 200),
  depends_on uuid references public.jobs (id) on delete set null,
  cancel_requested boolean not null default false,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now(),
  constraint jobs_running_has_lease check (status <> 'running' or (lease_expires_at is not null and worker_id is not null)),
  constraint jobs_terminal_has_finished_at
    check (status not in ('succeeded', 'failed', 'cancelled') or finished_at is not null),
  -- A second line of defence for rows written around the API (an operator, an older version):
  -- the timestamps the worker parses stay in a range every client can represent.
  constraint jobs_run_at_in_range
    check (run_at between timestamptz '1970-01-01 00:00:00+00' and timestamptz '9999-01-01 00:00:00+00'),
  constraint jobs_lease_expires_at_in_range
    check (lease_expires_at between timestamptz '1970-01-01 00:00:00+00' and timestamptz '9999-01-01 00:00:00+00')
);

comment on table public.jobs is 'The job queue. Written only through the RPC functions; users read their own rows (RLS).';

-- The claim path: due queued jobs in priority order.
create index jobs_queued_claim_order on public.jobs (priority desc, run_at, id) where status = 'queued';

-- Claiming within one (user, kind) group, in claim order.
create index jobs_queued_by_user_kind on public.jobs (user_id, kind, priority desc, run_at, id) where status = 'queued';

-- Per-user concurrency caps and the reaper.
create index jobs_running_by_user_kind on public.jobs (user_id, kind) where status = 'running';

create index jobs_running_lease on public.jobs (lease_expires_at) where status = 'running';

-- Pipelines: dependents of a job that just finished.
create index jobs_waiting_on on public.jobs (depends_on) where status = 'waiting';

-- A retried submission finds its job. Partial: a unique index over (user, null) enforces nothing,
-- and every non-HOT update (each status change) would add an entry for the many jobs without a key.
create unique index jobs_idempotency_key_per_user on public.jobs (user_id, idempotency_key)
  where idempotency_key is not null;

-- The user's own listing, and the rate limit's window: the user's jobs of the last minute, of
-- every kind (no more than the kinds' limits let through), the kind checked on each row. An index
-- on (user_id, kind, created_at) as well would be two more entries on every claim and every
-- outcome (a status change is never a HOT update): ~6 % of the database's time per job in
-- `bench.dbcost`, for a window that stays small (bench/FIXES.md).
create index jobs_user_created on public.jobs (user_id, created_at desc);

-- Retention.
create index jobs_finished on public.jobs (finished_at) where status in ('succeeded', 'failed', 'cancelled');

-- ---------------------------------------------------------------------------------------------
-- job_events: progress and streamed partial output, in order
-- ---------------------------------------------------------------------------------------------
create table public.job_events (
  id bigint generated always as identity primary key,
  job_id uuid not null references public.jobs (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz not null default now(),
  type text not null check (type in ('progress', 'partial', 'log')),
  data jsonb not null default '{}'::jsonb check (jsonb_typeof(data) = 'object')
);

comment on table public.job_events is 'Per-job log of progress, streamed partial output and worker notes, in insertion order.';

create index job_events_by_job on public.job_events (job_id, id);

create index job_events_by_user on public.job_events (user_id, created_at desc);

-- updated_at moves on every change; clock_timestamp keeps it increasing within one transaction,
-- which clients rely on to apply updates monotonically. A statement that sets updated_at itself
-- (to clock_timestamp(): the claim, success, progress and lease statements of the hot path) skips
-- the PL/pgSQL call, decided in the WHEN without entering it: two calls per job (bench/FIXES.md).
create function private.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := clock_timestamp();
  return new;
end;
$$;

create trigger jobs_touch_updated_at
  before update on public.jobs
  for each row
  when (old.updated_at is not distinct from new.updated_at)
  execute function private.touch_updated_at();

-- ---------------------------------------------------------------------------------------------
-- Row-level security and grants
-- ---------------------------------------------------------------------------------------------
alter table public.job_kinds enable row level security;

alter table public.jobs enable row level security;

alter table public.job_events enable row level security;

-- The platform's default privileges grant everything to the API roles; take it back and grant
-- exactly what each role needs. Writes go through the RPCs (security definer).
revoke all on table public.job_kinds, public.jobs, public.job_events from anon, authenticated;

grant select on table public.job_kinds, public.jobs, public.job_events to authenticated;

grant all on table public.job_kinds, public.jobs, public.job_events to service_role;

-- Default privileges also granted the API roles the identity sequence; nobody inserts directly.
revoke all on sequence public.job_events_id_seq from anon, authenticated;

create policy "signed-in users read job kinds"
  on public.job_kinds for select to authenticated
  using (true);

create policy "users read their own jobs"
  on public.jobs for select to authenticated
  using (user_id = (select auth.uid()));

create policy "users read their own job events"
  on public.job_events for select to authenticated
  using (user_id = (select auth.uid()));
