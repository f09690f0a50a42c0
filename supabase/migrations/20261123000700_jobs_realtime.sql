-- Realtime: the worker wakes on INSERTs into public.jobs (Postgres Changes); users receive every
-- change of their jobs on their private topic jobs:<user_id> (Broadcast from Database), which
-- only they may join (RLS on realtime.messages).
-- Results ride along only while small; larger ones are read from the row (RLS) on success.

alter publication supabase_realtime add table public.jobs;

-- Results ride along only while small; larger ones are read from the row (RLS) on success.
create function private.job_broadcast_payload(j public.jobs) returns jsonb
language plpgsql stable
set search_path = ''
as $$
begin
  return jsonb_build_object(
      'id', j.id, 'kind', j.kind, 'status', j.status, 'progress', j.progress,
      'attempts', j.attempts, 'max_attempts', j.max_attempts, 'error', j.error,
      'cancel_requested', j.cancel_requested, 'run_at', j.run_at, 'depends_on', j.depends_on,
      'created_at', j.created_at, 'started_at', j.started_at, 'finished_at', j.finished_at,
      'updated_at', j.updated_at)
    || case
         when j.result is null then '{}'::jsonb
         when octet_length(j.result::text) <= 8192 then jsonb_build_object('result', j.result)
         else jsonb_build_object('result_truncated', true)
       end;
end;
$$;


-- Quiet row triggers for the jobs a call broadcasts itself (report_progress_batch, complete_jobs):
-- transaction-local and naming the jobs, so a trigger firing for any other job in the same call
-- (e.g. a dependent job released by advance_dependents) still broadcasts. Quiet claims: a
-- transaction-local 'jobs.quiet_claims' = 'on', set by the worker's claim functions around their
-- claim, hides the queued -> running change (the worker announces it with its first report).
create function private.quiet_broadcasts(job_ids uuid[]) returns void
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('jobs.quiet_broadcasts', coalesce(array_to_string(job_ids, ','), ''), true);
end;
$$;

create function private.is_quiet(job_id uuid) returns boolean
language plpgsql stable
set search_path = ''
as $$
begin
  return job_id::text = any(string_to_array(nullif(current_setting('jobs.quiet_broadcasts', true), ''), ','));
end;
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
  if private.is_quiet(new.id) then
    return null;  -- the calling function sends this job's one message itself
  end if;
  -- A worker's claim (claim_jobs_or_park, complete_and_claim) is quiet: the worker announces the
  -- running job with its first report (report_progress_batch, "started"), one message for both.
  if tg_op = 'UPDATE' and old.status = 'queued' and new.status = 'running'
     and current_setting('jobs.quiet_claims', true) = 'on' then
    return null;
  end if;
  perform realtime.send(private.job_broadcast_payload(new), 'job', 'jobs:' || new.user_id::text, true);
  return null;
end;
$$;

create trigger jobs_broadcast_change
  after insert or update on public.jobs
  for each row execute function private.broadcast_job_change();


-- A job_events row as clients receive it (the same keys as before this migration).
create function private.job_event_payload(e public.job_events) returns jsonb
language plpgsql stable
set search_path = ''
as $$
begin
  return jsonb_build_object('id', e.id, 'job_id', e.job_id, 'type', e.type, 'data', e.data, 'created_at', e.created_at);
end;
$$;

create function private.broadcast_job_event() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if private.is_quiet(new.job_id) then
    return null;
  end if;
  perform realtime.send(private.job_event_payload(new), 'job_event', 'jobs:' || new.user_id::text, true);
  return null;
end;
$$;

-- One message per job: the row as the row trigger would send it, plus the events the call wrote.
create function private.job_message(j public.jobs, events jsonb) returns jsonb
language plpgsql stable
set search_path = ''
as $$
begin
  return private.job_broadcast_payload(j) || case when jsonb_array_length(coalesce(events, '[]')) > 0
                                                  then jsonb_build_object('events', events) else '{}'::jsonb end;
end;
$$;

-- Many messages in one INSERT into realtime.messages (returns how many it sent), the table Broadcast from Database reads
-- (hosted: "Database: adds a new entry to realtime.messages", docs/hosted-platform.md §3).
-- realtime.send inserts one row per call, each in its own subtransaction with a dynamic SET
-- LOCAL: ~30–45 µs a message here, ~10 µs each in one INSERT (bench/FIXES.md). The same row as
-- realtime.send writes (a payload without "id" gets the message's id; extension 'broadcast';
-- private), and the same failure rule: an insert that fails (a missing partition) loses these
-- messages with a warning, never the caller's work. Only the database's own functions send
-- (postgres bypasses RLS on hosted too), so no topic policy is asked for.
create function private.send_messages(p_event text, p_topics text[], p_payloads jsonb[]) returns integer
language plpgsql
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan  -- the arrays' sizes made a custom plan on most calls
as $$
declare
  v_sent integer;
begin
  if coalesce(cardinality(p_payloads), 0) = 0 then
    return 0;
  end if;
  insert into realtime.messages (id, payload, event, topic, private, extension)
  select m.id, case when m.payload ? 'id' then m.payload else jsonb_set(m.payload, '{id}', to_jsonb(m.id)) end,
         p_event, m.topic, true, 'broadcast'
  from (select gen_random_uuid() as id, p.payload, p.topic, p.ord
        from unnest(p_payloads, p_topics) with ordinality as p(payload, topic, ord)) m
  order by m.ord;
  get diagnostics v_sent = row_count;
  return v_sent;
exception
  when others then
    raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
    return 0;
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
