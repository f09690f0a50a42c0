-- Realtime: the worker wakes on INSERTs into public.jobs (Postgres Changes); users receive every
-- change of their jobs on their private topic jobs:<user_id> (Broadcast from Database), which
-- only they may join (RLS on realtime.messages).
-- Results ride along only while small; larger ones are read from the row (RLS) on success.

alter publication supabase_realtime add table public.jobs;

-- Results ride along only while small; larger ones are read from the row (RLS) on success.
create function private.job_broadcast_payload(j public.jobs) returns jsonb
language sql stable
set search_path = ''
as $$
  select jsonb_build_object(
    'id', j.id, 'kind', j.kind, 'status', j.status, 'progress', j.progress,
    'attempts', j.attempts, 'max_attempts', j.max_attempts, 'error', j.error,
    'cancel_requested', j.cancel_requested, 'run_at', j.run_at, 'depends_on', j.depends_on,
    'created_at', j.created_at, 'started_at', j.started_at, 'finished_at', j.finished_at,
    'updated_at', j.updated_at)
  || case
       when j.result is null then '{}'::jsonb
       when octet_length(j.result::text) <= 8192 then jsonb_build_object('result', j.result)
       else jsonb_build_object('result_truncated', true)
     end
$$;

create function private.broadcast_job_change() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Lease renewals alone are not news for the user.
  if tg_op = 'UPDATE' and (old.status, old.progress, old.attempts, old.error, old.cancel_requested, old.result, old.run_at)
                          is not distinct from
                          (new.status, new.progress, new.attempts, new.error, new.cancel_requested, new.result, new.run_at) then
    return null;
  end if;
  perform realtime.send(private.job_broadcast_payload(new), 'job', 'jobs:' || new.user_id::text, true);
  return null;
end;
$$;

create trigger jobs_broadcast_change
  after insert or update on public.jobs
  for each row execute function private.broadcast_job_change();

create function private.broadcast_job_event() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform realtime.send(
    jsonb_build_object('id', new.id, 'job_id', new.job_id, 'type', new.type, 'data', new.data, 'created_at', new.created_at),
    'job_event', 'jobs:' || new.user_id::text, true);
  return null;
end;
$$;

create trigger job_events_broadcast
  after insert on public.job_events
  for each row execute function private.broadcast_job_event();

-- A signed-in user may join (read) only their own jobs topic. No insert policy: clients cannot
-- broadcast on it; only the database does.
create policy "users receive their own job topic"
  on realtime.messages for select to authenticated
  using (
    (select realtime.topic()) = 'jobs:' || (select auth.uid())::text
    and realtime.messages.extension = 'broadcast'
  );
