-- Outcomes (the worker side, service role): progress and streamed output, success (one job or a
-- batch), failure with backoff, deferral after a provider rate limit, and retention.
--
-- complete_jobs acknowledges many finished jobs in one call: the input is validated as a whole
-- first (any bad item: 22023 naming the item and field, nothing changes); then each job is
-- completed exactly as complete_job would, except that a job this worker no longer holds is
-- reported in its row (completed = false, reason) instead of failing the whole batch. Rows are
-- locked in id order, so two batches never deadlock each other.
--
-- Errors carry SQLSTATEs the REST layer maps to HTTP statuses, and messages that start with the
-- field or job at fault:
--   22023 invalid_parameter_value -> 400   bad argument ("kind: unknown job kind ...")
--   PT404                         -> 404   no such job (or not yours: existence is not leaked)
--   PT409                         -> 409   the job is not in a state that allows it (lease lost, finished)
--   PT413                         -> 413   payload larger than the kind allows
--   PT429                         -> 429   per-user rate limit; the hint says "retry after N seconds"
--   42501 insufficient_privilege  -> 401/403  no signed-in user
-- A raised error aborts the call's transaction, so a refused call changes nothing. All functions
-- are security definer with an empty search_path and fully qualified names. Who may call which
-- is granted once, in 20261123001000_jobs_grants.sql.

-- ---------------------------------------------------------------------------------------------
-- report_progress: a refused percent is quoted briefly
-- ---------------------------------------------------------------------------------------------
create function public.report_progress(
  job_id uuid,
  worker_id text,
  percent numeric default null,
  message text default null,
  partial text default null
) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  j public.jobs;
  v_progress jsonb;
begin
  if percent is null and message is null and partial is null then
    perform private.raise_invalid('percent', 'nothing to report: give percent, message or partial');
  end if;
  if percent is not null and percent not between 0 and 100 then
    perform private.raise_invalid('percent', format('must be between 0 and 100, got %s', private.excerpt(percent::text, 20)));
  end if;
  if message is not null and length(message) > 1000 then
    perform private.raise_invalid('message', format('must be at most 1000 characters, got %s', length(message)));
  end if;
  if partial is not null and octet_length(partial) > 65536 then
    perform private.raise_invalid('partial', format('must be at most 65536 bytes per call, got %s', octet_length(partial)));
  end if;
  j := private.held_job('report_progress', job_id, worker_id);

  if percent is not null or message is not null then
    v_progress := jsonb_build_object(
      'percent', coalesce(round(percent, 1), (j.progress ->> 'percent')::numeric, 0),
      'message', coalesce(message, j.progress ->> 'message'));
    update public.jobs set progress = v_progress where id = j.id;
    insert into public.job_events (job_id, user_id, type, data) values (j.id, j.user_id, 'progress', v_progress);
  end if;
  if partial is not null then
    insert into public.job_events (job_id, user_id, type, data)
    values (j.id, j.user_id, 'partial', jsonb_build_object('text', partial));
  end if;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- complete_job / fail_job / defer_job / release_jobs
-- ---------------------------------------------------------------------------------------------
create function public.complete_job(job_id uuid, worker_id text, result jsonb) returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  j public.jobs;
begin
  if result is null or jsonb_typeof(result) not in ('object', 'array') then
    perform private.raise_invalid('result', format('must be a JSON object or array, got %s', coalesce(jsonb_typeof(result), 'null')));
  end if;
  if octet_length(result::text) > 1048576 then
    perform private.raise_invalid('result', format('%s bytes exceeds 1 MiB; store large outputs in Storage', octet_length(result::text)));
  end if;
  j := private.held_job('complete_job', job_id, worker_id);
  update public.jobs
  set status = 'succeeded', result = complete_job.result, finished_at = now(), lease_expires_at = null,
      error = null, progress = jsonb_build_object('percent', 100, 'message', coalesce(progress ->> 'message', 'done'))
  where id = j.id
  returning * into j;
  return j;
end;
$$;

-- An item may carry the job's last progress ({percent?, message?}), recorded as a progress
-- event before the job succeeds, all in one Realtime message per job (helpers in
-- 20261204000500_progress_batch.sql; plpgsql resolves them when called), and the usage of the
-- job's model calls not yet recorded (`usage`: record_usage_batch's items without job_id, at most
-- 1000 in a call; helper in 20261204000900_usage_batch.sql). Usage is recorded before any job
-- succeeds, in the same transaction, whether or not the worker still holds the job: the calls
-- were made and paid for, and the job's reservation never ends before its spend is in the ledger.
create function public.complete_jobs(worker_id text, completions jsonb)
returns table (job_id uuid, completed boolean, reason text)
language plpgsql
security definer
set search_path = ''
-- Generic plans, as claim_jobs': its update and progress statements were planned on every call.
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
  n integer;
  item jsonb;
  i integer := 0;
  k text;
  v_result jsonb;
  v_done uuid[];
  v_steps jsonb;
  v_sent integer;
  v_calls jsonb := '[]';
  v_names text[] := '{}';
  u integer;
begin
  perform private.check_worker_id(complete_jobs.worker_id);
  perform private.check_batch('completions', completions, '{"job_id", "result"}');
  n := jsonb_array_length(completions);
  -- A call whose items all carry only a job_id, a result and maybe usage (a list of objects
  -- without a job_id), all well-formed, is checked in this one statement and its usage records
  -- gathered in the next; any other call walks its items below, which accepts exactly these,
  -- gathers the same records and names the first fault (one by one, ~30 µs an item:
  -- bench/FIXES.md; every AI job's success carries usage).
  if exists (
    select 1 from jsonb_array_elements(completions) as t(e)
    where case when jsonb_typeof(e) <> 'object' then true
               else (e - '{job_id,result,usage}'::text[]) <> '{}'::jsonb
                 or jsonb_typeof(e -> 'job_id') is distinct from 'string'
                 or (e ->> 'job_id') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                 or coalesce(jsonb_typeof(e -> 'result'), 'null') not in ('object', 'array')
                 or octet_length((e -> 'result')::text) > 1048576
                 or coalesce(jsonb_typeof(e -> 'usage'), 'null') not in ('null', 'array')
                 or case when jsonb_typeof(e -> 'usage') = 'array' then exists (
                       select 1 from jsonb_array_elements(e -> 'usage') as u(c)
                       where jsonb_typeof(u.c) <> 'object' or u.c ? 'job_id') else false end end
  ) then
    for item in select e from jsonb_array_elements(completions) as t(e) loop
      perform private.check_batch_item(format('completions[%s]', i), item, array['job_id', 'result', 'progress', 'usage']);
      if coalesce(jsonb_typeof(item -> 'usage'), 'null') <> 'null' then
        if jsonb_typeof(item -> 'usage') <> 'array' then
          perform private.raise_invalid(format('completions[%s].usage', i),
            format('must be a JSON array of model calls, got %s', jsonb_typeof(item -> 'usage')));
        end if;
        for u in 0 .. jsonb_array_length(item -> 'usage') - 1 loop
          if jsonb_typeof(item -> 'usage' -> u) = 'object' and item -> 'usage' -> u ? 'job_id' then
            perform private.raise_invalid(format('completions[%s].usage[%s]', i, u), 'must not name a job_id: it is the completion''s');
          end if;
          v_calls := v_calls || jsonb_build_array(
            case when jsonb_typeof(item -> 'usage' -> u) = 'object'
                 then (item -> 'usage' -> u) || jsonb_build_object('job_id', item -> 'job_id')
                 else item -> 'usage' -> u end);
          v_names := v_names || format('completions[%s].usage[%s]', i, u);
        end loop;
      end if;
      v_result := item -> 'result';
      if v_result is null or jsonb_typeof(v_result) not in ('object', 'array') then
        perform private.raise_invalid(format('completions[%s].result', i),
          format('must be a JSON object or array, got %s', coalesce(jsonb_typeof(v_result), 'nothing')));
      end if;
      if octet_length(v_result::text) > 1048576 then
        perform private.raise_invalid(format('completions[%s].result', i),
          format('%s bytes exceeds 1 MiB; store large outputs in Storage', octet_length(v_result::text)));
      end if;
      if item ? 'progress' and jsonb_typeof(item -> 'progress') <> 'null' then
        if jsonb_typeof(item -> 'progress') <> 'object' then
          perform private.raise_invalid(format('completions[%s].progress', i),
            format('must be an object with percent and/or message, got %s', jsonb_typeof(item -> 'progress')));
        end if;
        for k in select jsonb_object_keys(item -> 'progress') loop
          if k not in ('percent', 'message') then
            perform private.raise_invalid(format('completions[%s].progress', i), format('unknown key "%s"; allowed: percent, message', k));
          end if;
        end loop;
        perform private.check_progress_fields(format('completions[%s].progress', i), item -> 'progress');
      end if;
      i := i + 1;
    end loop;
  else
    -- The records the walk would gather, in its order and with its names.
    select coalesce(jsonb_agg(u.c || jsonb_build_object('job_id', t.e -> 'job_id') order by t.n, u.m), '[]'),
           coalesce(array_agg(format('completions[%s].usage[%s]', t.n - 1, u.m - 1) order by t.n, u.m), '{}')
    into v_calls, v_names
    from jsonb_array_elements(completions) with ordinality as t(e, n)
    cross join lateral jsonb_array_elements(
      case when jsonb_typeof(t.e -> 'usage') = 'array' then t.e -> 'usage' else '[]'::jsonb end) with ordinality as u(c, m);
  end if;
  if (select count(distinct (e ->> 'job_id')::uuid) from jsonb_array_elements(completions) as t(e)) <> n then
    perform private.raise_invalid('completions', 'lists a job_id more than once');
  end if;
  if jsonb_array_length(v_calls) > 1000 then
    perform private.raise_invalid('completions', format('carry %s usage records; at most 1000 in one call', jsonb_array_length(v_calls)));
  end if;

  v_done := private.lock_held_jobs(
    array(select (e ->> 'job_id')::uuid from jsonb_array_elements(completions) as t(e)), complete_jobs.worker_id);
  -- Usage after the rows are locked (all listed jobs, in id order), so recording adds no lock
  -- another transaction could be waiting for in a different order.
  if jsonb_array_length(v_calls) > 0 then
    perform from private.record_usage_items(complete_jobs.worker_id, v_calls, v_names);
  end if;
  perform private.quiet_broadcasts(v_done);

  -- The last progress, as an event (the client's history) and as the row's message.
  with steps as (
    select j.id, j.user_id, private.next_progress(j.progress, e -> 'progress') as progress
    from jsonb_array_elements(completions) as t(e)
    join public.jobs j on j.id = (e ->> 'job_id')::uuid
    where j.id = any(v_done) and coalesce(e #>> '{progress,percent}', e #>> '{progress,message}') is not null
  ),
  logged as (
    insert into public.job_events (job_id, user_id, type, data)
    select steps.id, steps.user_id, 'progress', steps.progress from steps
    returning job_events.job_id, private.job_event_payload(job_events) as payload
  )
  select coalesce(jsonb_object_agg(l.job_id::text, l.payload), '{}')
  into v_steps from logged l;

  with done as (
    update public.jobs j
    set status = 'succeeded', result = t.e -> 'result', finished_at = now(), lease_expires_at = null, error = null,
        updated_at = clock_timestamp(),  -- set here, so jobs_touch_updated_at is skipped
        progress = jsonb_build_object('percent', 100,
                                      'message', coalesce(v_steps #>> array[j.id::text, 'data', 'message'],
                                                          j.progress ->> 'message', 'done'))
    from jsonb_array_elements(completions) as t(e)
    where j.id = (t.e ->> 'job_id')::uuid and j.id = any(v_done)
    returning j
  )
  select private.send_messages('job',
           array_agg('jobs:' || (d.j).user_id::text order by (d.j).id),
           array_agg(private.job_message(d.j, case when v_steps ? (d.j).id::text
                                                   then jsonb_build_array(v_steps -> (d.j).id::text) end)
                     order by (d.j).id))
  into v_sent from done d;
  perform private.quiet_broadcasts(null);

  return query
  with input as (
    select (e ->> 'job_id')::uuid as id, ord from jsonb_array_elements(completions) with ordinality as t(e, ord)
  )
  select input.id, input.id = any(v_done),
         -- A lookup per refused item only: a join was planned as a scan of the whole table.
         case when input.id = any(v_done) then null
              else private.not_held_reason((select j from public.jobs j where j.id = input.id), complete_jobs.worker_id) end
  from input
  order by input.ord;
end;
$$;

create function public.fail_job(job_id uuid, worker_id text, error jsonb, retryable boolean default true)
returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  j public.jobs;
  v_error jsonb;
begin
  if error is null or jsonb_typeof(error) <> 'object' then
    perform private.raise_invalid('error', format('must be a JSON object, got %s', coalesce(jsonb_typeof(error), 'null')));
  end if;
  if jsonb_typeof(error -> 'message') is distinct from 'string' or length(error ->> 'message') = 0 then
    perform private.raise_invalid('error', 'must have a non-empty "message" string');
  end if;
  if octet_length(error::text) > 16384 then
    perform private.raise_invalid('error', format('%s bytes exceeds 16384', octet_length(error::text)));
  end if;
  if retryable is null then
    perform private.raise_invalid('retryable', 'must not be null');
  end if;
  j := private.held_job('fail_job', job_id, worker_id);
  v_error := error || jsonb_build_object(
    'type', coalesce(error ->> 'type', 'error'),
    'retryable', retryable,
    'attempt', j.attempts);

  if j.cancel_requested then
    update public.jobs
    set status = 'cancelled', error = v_error, finished_at = now(), lease_expires_at = null
    where id = j.id returning * into j;
  elsif retryable and j.attempts < j.max_attempts then
    update public.jobs
    set status = 'queued', error = v_error, lease_expires_at = null, worker_id = null,
        run_at = now() + private.retry_delay(j.attempts, random())
    where id = j.id returning * into j;
  else
    update public.jobs
    set status = 'failed', error = v_error, finished_at = now(), lease_expires_at = null
    where id = j.id returning * into j;
  end if;
  return j;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- defer_job: run_at finite and within a day either side (a past one still means now)
-- ---------------------------------------------------------------------------------------------
create function public.defer_job(job_id uuid, worker_id text, run_at timestamptz, reason text)
returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  j public.jobs;
begin
  if run_at is null then
    perform private.raise_invalid('run_at', 'must not be null');
  end if;
  perform private.check_timestamp('run_at', run_at, interval '1 day', interval '1 day');
  if reason is null or length(btrim(reason)) = 0 or length(reason) > 500 then
    perform private.raise_invalid('reason', 'must be a non-empty string of at most 500 characters');
  end if;
  j := private.held_job('defer_job', job_id, worker_id);
  if j.cancel_requested then
    update public.jobs
    set status = 'cancelled', finished_at = now(), lease_expires_at = null,
        error = jsonb_build_object('type', 'cancelled', 'message', 'cancelled by the user', 'retryable', false, 'attempt', attempts)
    where id = j.id returning * into j;
    return j;
  end if;
  -- A provider rate limit is not the job's fault: the attempt is given back.
  update public.jobs
  set status = 'queued', attempts = greatest(0, attempts - 1), lease_expires_at = null, worker_id = null,
      run_at = greatest(defer_job.run_at, now()),
      progress = jsonb_build_object('percent', progress -> 'percent', 'message', 'waiting: ' || reason)
  where id = j.id returning * into j;
  insert into public.job_events (job_id, user_id, type, data)
  values (j.id, j.user_id, 'log', jsonb_build_object('event', 'deferred', 'reason', reason, 'run_at', j.run_at));
  return j;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- purge_finished_jobs: older_than finite and at most 10 years
-- ---------------------------------------------------------------------------------------------
create function public.purge_finished_jobs(older_than interval default '7 days') returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  perform private.check_interval('older_than', older_than, interval '10 years');
  with purged as (
    delete from public.jobs j
    where j.status in ('succeeded', 'failed', 'cancelled') and j.finished_at < now() - older_than
    returning 1
  )
  select count(*) into v_count from purged;
  perform private.purge_expired_cache_entries();
  return v_count;
end;
$$;
