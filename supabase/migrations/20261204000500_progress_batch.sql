-- The lean hot path (issue 14): progress of many jobs in one call, the last progress with the
-- outcome, and one Realtime message per job per call instead of one per row and one per event.
--
-- report_progress_batch(worker_id, reports) applies a worker's queued progress reports and
-- streamed text for many jobs at once. Validated as a whole first (any bad item: 22023 naming
-- `reports[i].field`, nothing changes), exactly like complete_jobs; then per job: a job this
-- worker no longer holds is answered with accepted = false and a reason, the others get every
-- item applied in array order (progress steps and text fragments as job_events rows, the last
-- progress on the row).
--
-- Realtime budget: hosted Realtime counts every message (docs/hosted-platform.md). The row
-- triggers of 20261123000700 send one message per changed jobs row and one per job_events row;
-- a progress report cost two (row + event) and each text fragment one. The functions here tell
-- those triggers to stay quiet for the jobs they handle (private.quiet_broadcasts, with the
-- triggers in 20261123000700) and send ONE 'job' message per job instead
-- (private.job_message, sent by private.send_messages): the row's payload plus an "events" list holding the job_events
-- rows the call wrote, in order. Clients apply the events, then the row (plugin-client backend).
-- complete_jobs (20261123000500) uses the same helpers for the last progress it carries.

-- Record one event of a job and answer it as clients receive it.
create function private.add_job_event(job_id uuid, type text, data jsonb) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_payload jsonb;
begin
  insert into public.job_events as e (job_id, user_id, type, data)
  select j.id, j.user_id, add_job_event.type, add_job_event.data from public.jobs j where j.id = add_job_event.job_id
  returning private.job_event_payload(e) into v_payload;
  return v_payload;
end;
$$;

-- Why a worker may not act on a job (null: it may). The same words as complete_jobs'.
create function private.not_held_reason(j public.jobs, worker_id text) returns text
language plpgsql stable
set search_path = ''
as $$
begin
  return case
      when j.id is null then 'not found'
      when j.status <> 'running' or j.worker_id is distinct from worker_id then
        format('not held by worker "%s" (status %s, held by %s)', worker_id, j.status,
               coalesce('"' || j.worker_id || '"', 'no worker'))
      when j.lease_expires_at < now() then format('the lease expired at %s', j.lease_expires_at)
    end;
end;
$$;

-- Lock the listed jobs in id order (two batches never deadlock each other) and answer those
-- the worker holds, in one statement: a row comes out of its lock in its latest version (READ
-- COMMITTED rechecks a row it waited for), the one the call's later statements see.
create function private.lock_held_jobs(job_ids uuid[], worker_id text) returns uuid[]
language plpgsql
set search_path = ''
set plan_cache_mode = force_generic_plan  -- as claim_jobs': planned on every call otherwise
as $$
declare
  v_held uuid[];
begin
  select coalesce(array_agg(l.id) filter (where private.not_held_reason(l.j, lock_held_jobs.worker_id) is null), '{}')
  into v_held
  from (select j.id, j from public.jobs j where j.id = any(job_ids) order by j.id for update) l;
  return v_held;
end;
$$;

-- A progress object's percent and message, named `field.percent` / `field.message` when refused.
create function private.check_progress_fields(field text, item jsonb) returns void
language plpgsql
set search_path = ''
as $$
begin
  if item ? 'percent' and jsonb_typeof(item -> 'percent') <> 'null' then
    if jsonb_typeof(item -> 'percent') <> 'number' then
      perform private.raise_invalid(field || '.percent', format('must be a number, got %s', jsonb_typeof(item -> 'percent')));
    end if;
    if (item ->> 'percent')::numeric not between 0 and 100 then
      perform private.raise_invalid(field || '.percent',
        format('must be between 0 and 100, got %s', private.excerpt(item ->> 'percent', 20)));
    end if;
  end if;
  if item ? 'message' and jsonb_typeof(item -> 'message') <> 'null' then
    if jsonb_typeof(item -> 'message') <> 'string' then
      perform private.raise_invalid(field || '.message', format('must be a string, got %s', jsonb_typeof(item -> 'message')));
    end if;
    if length(item ->> 'message') > 1000 then
      perform private.raise_invalid(field || '.message',
        format('must be at most 1000 characters, got %s', length(item ->> 'message')));
    end if;
  end if;
end;
$$;

-- The progress after a step: what the step gives, else what the job had (as report_progress).
create function private.next_progress(prev jsonb, step jsonb) returns jsonb
language plpgsql immutable
set search_path = ''
as $$
begin
  return jsonb_build_object(
      'percent', coalesce(round((step ->> 'percent')::numeric, 1), (prev ->> 'percent')::numeric, 0),
      'message', coalesce(step ->> 'message', prev ->> 'message'));
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- report_progress_batch
-- ---------------------------------------------------------------------------------------------
create function public.report_progress_batch(worker_id text, reports jsonb)
returns table (job_id uuid, accepted boolean, reason text)
language plpgsql
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan  -- as claim_jobs': its update was planned on every call
as $$
#variable_conflict use_column
declare
  item jsonb;
  i integer := 0;
  v_field text;
  v_id uuid;
  v_progress jsonb := '{}';  -- job id -> its progress so far in this call
  v_events jsonb := '{}';    -- job id -> the events written for it, in order
  v_held uuid[];
  v_event jsonb;
begin
  perform private.check_worker_id(report_progress_batch.worker_id);
  perform private.check_batch('reports', reports, '{"job_id", "percent", "message", "partial", "started"}');
  if octet_length(reports::text) > 4194304 then
    perform private.raise_invalid('reports', format('%s bytes exceeds 4 MiB; send fewer reports per call', octet_length(reports::text)));
  end if;
  for item in select e from jsonb_array_elements(reports) as t(e) loop
    v_field := format('reports[%s]', i);
    perform private.check_batch_item(v_field, item, array['job_id', 'percent', 'message', 'partial', 'started']);
    perform private.check_progress_fields(v_field, item);
    if item ? 'partial' and jsonb_typeof(item -> 'partial') <> 'null' then
      if jsonb_typeof(item -> 'partial') <> 'string' then
        perform private.raise_invalid(v_field || '.partial', format('must be a string, got %s', jsonb_typeof(item -> 'partial')));
      end if;
      if octet_length(item ->> 'partial') > 65536 then
        perform private.raise_invalid(v_field || '.partial',
          format('must be at most 65536 bytes per item, got %s', octet_length(item ->> 'partial')));
      end if;
    end if;
    -- "started": true announces the job (its row, status running) after a quiet claim; with
    -- nothing else the item writes no event, and the job's one message carries the row alone.
    if item ? 'started' and jsonb_typeof(item -> 'started') <> 'null' and item -> 'started' <> 'true'::jsonb then
      perform private.raise_invalid(v_field || '.started',
        format('must be true, got %s', private.excerpt((item -> 'started')::text, 20)));
    end if;
    if coalesce(item ->> 'percent', item ->> 'message', item ->> 'partial') is null
       and item -> 'started' is distinct from 'true'::jsonb then
      perform private.raise_invalid(v_field, 'nothing to report: give percent, message, partial or started');
    end if;
    i := i + 1;
  end loop;

  v_held := private.lock_held_jobs(
    array(select (e ->> 'job_id')::uuid from jsonb_array_elements(reports) as t(e)), report_progress_batch.worker_id);
  perform private.quiet_broadcasts(v_held);

  for item in select e from jsonb_array_elements(reports) as t(e) loop
    v_id := (item ->> 'job_id')::uuid;
    continue when not v_id = any(v_held);
    if not v_progress ? v_id::text then
      v_progress := v_progress || jsonb_build_object(v_id::text, (select j.progress from public.jobs j where j.id = v_id));
      v_events := v_events || jsonb_build_object(v_id::text, '[]'::jsonb);
    end if;
    if coalesce(item ->> 'percent', item ->> 'message') is not null then
      v_progress := jsonb_set(v_progress, array[v_id::text], private.next_progress(v_progress -> v_id::text, item));
      v_event := private.add_job_event(v_id, 'progress', v_progress -> v_id::text);
      v_events := jsonb_set(v_events, array[v_id::text], (v_events -> v_id::text) || jsonb_build_array(v_event));
    end if;
    if item ->> 'partial' is not null then
      v_event := private.add_job_event(v_id, 'partial', jsonb_build_object('text', item ->> 'partial'));
      v_events := jsonb_set(v_events, array[v_id::text], (v_events -> v_id::text) || jsonb_build_array(v_event));
    end if;
  end loop;

  -- The row gets the last progress; then one message per job carries the row and its events.
  update public.jobs j set progress = v_progress -> j.id::text, updated_at = clock_timestamp()
  where j.id = any(v_held) and j.progress is distinct from v_progress -> j.id::text;
  perform private.send_messages('job', array_agg('jobs:' || j.user_id::text order by j.id),
                                 array_agg(private.job_message(j, v_events -> j.id::text) order by j.id))
  from public.jobs j where j.id = any(v_held);
  perform private.quiet_broadcasts(null);

  return query
  with input as (
    select distinct on ((e ->> 'job_id')::uuid) (e ->> 'job_id')::uuid as id, ord
    from jsonb_array_elements(reports) with ordinality as t(e, ord)
    order by (e ->> 'job_id')::uuid, ord
  )
  select input.id, input.id = any(v_held),
         -- A lookup per refused item only: a join was planned as a scan of the whole table.
         case when input.id = any(v_held) then null
              else private.not_held_reason((select j from public.jobs j where j.id = input.id), report_progress_batch.worker_id) end
  from input
  order by input.ord;
end;
$$;


select private.grant_calls(array['public.report_progress_batch(text, jsonb)'], 'service_role');
revoke all on all functions in schema private from public, anon, authenticated;
