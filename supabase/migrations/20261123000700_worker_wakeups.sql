-- Worker wake-ups without Realtime, and the worker's "when is the next job due" question.
--
-- 1. jobs_queued NOTIFY: a worker that talks to Postgres directly (psycopg adapter, self-hosted
--    Postgres) LISTENs on channel "jobs_queued" instead of subscribing through Realtime. The
--    payload is small and public-safe (no user data): id, kind, status, run_at.
-- 2. next_job_run_at(kinds): the earliest future run_at among queued jobs, so a worker can arm
--    one timer for retries, deferrals and scheduled jobs instead of polling.

create function private.notify_job_queued() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Fires for new queued jobs and for jobs coming back to the queue (retry backoff, deferral,
  -- release, reaped lease, a pipeline's dependency finishing); not for lease renewals.
  if new.status = 'queued' and (tg_op = 'INSERT' or old.status is distinct from 'queued' or old.run_at is distinct from new.run_at) then
    perform pg_notify('jobs_queued', json_build_object(
      'id', new.id, 'kind', new.kind, 'status', new.status, 'run_at', new.run_at)::text);
  end if;
  return null;
end;
$$;

create trigger jobs_notify_queued
  after insert or update of status, run_at on public.jobs
  for each row execute function private.notify_job_queued();

create function public.next_job_run_at(kinds text[] default null) returns timestamptz
language sql
stable
security definer
set search_path = ''
as $$
  select min(j.run_at)
  from public.jobs j
  where j.status = 'queued' and j.run_at > now() and (kinds is null or j.kind = any(kinds))
$$;

comment on function public.next_job_run_at(text[]) is
  'Earliest future run_at of a queued job (of the given kinds): when a worker should next try to claim.';

revoke all on function public.next_job_run_at(text[]) from public, anon, authenticated;
grant execute on function public.next_job_run_at(text[]) to service_role;
revoke all on all functions in schema private from public, anon, authenticated;
