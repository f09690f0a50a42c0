-- Dashboard views for operators (Supabase Table/SQL editor) and for users (their own rows).
-- security_invoker: the caller's RLS applies, so a user sees only their own jobs while the
-- dashboard (postgres) and the service role see everything.
--
-- The views are read-only, and a write to one is a clear 4xx, never a 500: PostgreSQL's rewriter
-- refuses a write to a view that is not automatically updatable (GROUP BY, window functions)
-- with SQLSTATE 55000 before it checks privileges, and PostgREST answers class 55 with HTTP 500.
-- An INSTEAD OF trigger makes each view "updatable by trigger": privileges are checked first
-- (users hold only SELECT: 42501, HTTP 401/403), and a role that does hold write privileges
-- reaches the trigger, which raises PT405 (HTTP 405).

create view public.job_stats with (security_invoker = true) as
select
  j.kind,
  j.status,
  count(*)::integer as jobs,
  round((percentile_cont(0.5) within group (order by extract(epoch from j.started_at - j.created_at))
         filter (where j.started_at is not null))::numeric, 3) as wait_p50_seconds,
  round((percentile_cont(0.95) within group (order by extract(epoch from j.started_at - j.created_at))
         filter (where j.started_at is not null))::numeric, 3) as wait_p95_seconds,
  round((percentile_cont(0.5) within group (order by extract(epoch from j.finished_at - j.started_at))
         filter (where j.finished_at is not null and j.started_at is not null))::numeric, 3) as run_p50_seconds,
  round((percentile_cont(0.95) within group (order by extract(epoch from j.finished_at - j.started_at))
         filter (where j.finished_at is not null and j.started_at is not null))::numeric, 3) as run_p95_seconds,
  sum(j.attempts)::integer as attempts
from public.jobs j
where j.created_at > now() - interval '24 hours'
group by j.kind, j.status;

comment on view public.job_stats is 'Per kind and status over the last 24 h: counts, wait (created->started) and run (started->finished) p50/p95.';

create view public.active_jobs with (security_invoker = true) as
select
  j.id, j.user_id, j.kind, j.worker_id, j.attempts, j.max_attempts,
  j.progress ->> 'percent' as percent,
  j.progress ->> 'message' as message,
  j.cancel_requested,
  j.started_at,
  round(extract(epoch from now() - j.started_at)::numeric, 1) as running_seconds,
  j.lease_expires_at,
  j.lease_expires_at < now() as lease_expired
from public.jobs j
where j.status = 'running'
order by j.started_at;

comment on view public.active_jobs is 'Running jobs: who runs them, progress, lease state.';

create view public.pending_jobs_queue with (security_invoker = true) as
select
  j.id, j.user_id, j.kind, j.status, j.priority, j.run_at, j.attempts, j.max_attempts, j.depends_on,
  row_number() over (order by j.status = 'waiting', j.priority desc, j.run_at, j.id)::integer as queue_position,
  case
    when j.status = 'waiting' then 'waiting for job ' || j.depends_on::text
    when j.run_at > now() and j.progress ->> 'message' like 'waiting: %' then j.progress ->> 'message'
    when j.run_at > now() and j.attempts > 0 then 'retry backoff after attempt ' || j.attempts
    when j.run_at > now() then 'scheduled'
    else 'due'
  end as reason,
  round(extract(epoch from now() - j.created_at)::numeric, 1) as age_seconds
from public.jobs j
where j.status in ('queued', 'waiting')
order by queue_position;

comment on view public.pending_jobs_queue is 'Queued and waiting jobs in claim order, with why each is not running yet.';

revoke all on public.job_stats, public.active_jobs, public.pending_jobs_queue from anon, authenticated;

grant select on public.job_stats, public.active_jobs, public.pending_jobs_queue to authenticated, service_role;

create function private.refuse_view_write() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception '% is a read-only view', tg_table_name
    using errcode = 'PT405', hint = 'Write through the RPC functions (enqueue_job, cancel_job, ...).';
end;
$$;

create trigger read_only instead of insert or update or delete on public.job_stats
  for each row execute function private.refuse_view_write();

create trigger read_only instead of insert or update or delete on public.active_jobs
  for each row execute function private.refuse_view_write();

create trigger read_only instead of insert or update or delete on public.pending_jobs_queue
  for each row execute function private.refuse_view_write();
