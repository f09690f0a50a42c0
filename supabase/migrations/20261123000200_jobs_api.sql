-- The queue API: every operation is one function here. Python and TypeScript are thin callers.
--
-- Errors are raised with SQLSTATEs the REST layer maps to HTTP statuses, and messages that start
-- with the field or job at fault:
--   22023 invalid_parameter_value -> 400   bad argument ("kind: unknown job kind ...")
--   PT404                         -> 404   no such job (or not yours: existence is not leaked)
--   PT409                         -> 409   the job is not in a state that allows it (lease lost, finished)
--   PT413                         -> 413   payload larger than the kind allows
--   PT429                         -> 429   per-user rate limit; the hint says "retry after N seconds"
--   42501 insufficient_privilege  -> 401/403  no signed-in user
-- A raised error aborts the call's transaction, so a refused call changes nothing.
--
-- All functions are security definer with an empty search_path and fully qualified names.

-- ---------------------------------------------------------------------------------------------
-- Private helpers
-- ---------------------------------------------------------------------------------------------

-- Advisory-lock namespaces (the two-key form keeps them apart from any other user of advisory locks).
create function private.lock_class(name text) returns integer
language sql immutable
set search_path = ''
as $$
  select case name when 'rate_limit' then 7301 when 'claim_group' then 7302 end
$$;

create function private.group_key(user_id uuid, kind text) returns integer
language sql immutable
set search_path = ''
as $$
  select hashtext(user_id::text || '/' || kind)
$$;

-- Retry delay after a retryable failure of attempt n: exponential from 5 s, capped at 10 min,
-- with "equal jitter" (half fixed, half random) so a burst of failures does not retry in lockstep.
-- `jitter` in [0, 1] is passed in so the schedule is testable; callers pass random().
create function private.retry_delay(attempt integer, jitter double precision) returns interval
language sql immutable
set search_path = ''
as $$
  select make_interval(secs => base / 2 + base / 2 * greatest(0, least(1, jitter)))
  from (select least(600.0, 5.0 * power(2, greatest(attempt, 1) - 1)) as base) b
$$;

create function private.raise_invalid(field text, problem text, hint text default null) returns void
language plpgsql
set search_path = ''
as $$
begin
  raise exception '%: %', field, problem using errcode = '22023', hint = coalesce(hint, '');
end;
$$;

create function private.check_worker_id(worker_id text) returns void
language plpgsql
set search_path = ''
as $$
begin
  if worker_id is null or length(btrim(worker_id)) = 0 then
    perform private.raise_invalid('worker_id', 'must be a non-empty string');
  elsif length(worker_id) > 200 then
    perform private.raise_invalid('worker_id', format('must be at most 200 characters, got %s', length(worker_id)));
  end if;
end;
$$;

create function private.check_lease_seconds(lease_seconds integer) returns void
language plpgsql
set search_path = ''
as $$
begin
  if lease_seconds is null or lease_seconds not between 5 and 3600 then
    perform private.raise_invalid('lease_seconds', format('must be between 5 and 3600, got %s', coalesce(lease_seconds::text, 'null')));
  end if;
end;
$$;

-- Lock and return a job the calling worker holds: running, same worker, lease not expired.
-- Anything else is a clear PT404/PT409 naming the job, its state and its holder.
create function private.held_job(fn text, job_id uuid, worker_id text) returns public.jobs
language plpgsql
set search_path = ''
as $$
declare
  j public.jobs;
begin
  perform private.check_worker_id(worker_id);
  if job_id is null then
    perform private.raise_invalid('job_id', 'must not be null');
  end if;
  select * into j from public.jobs where id = job_id for update;
  if not found then
    raise exception '%: job % not found', fn, job_id using errcode = 'PT404';
  end if;
  if j.status <> 'running' or j.worker_id is distinct from worker_id then
    raise exception '%: job % is not held by worker "%"', fn, job_id, worker_id
      using errcode = 'PT409',
            detail = format('status %s, held by %s', j.status, coalesce('"' || j.worker_id || '"', 'no worker')),
            hint = 'the lease was lost (reaped, released or cancelled); drop this job';
  end if;
  if j.lease_expires_at < now() then
    raise exception '%: the lease of job % expired at %', fn, job_id, j.lease_expires_at
      using errcode = 'PT409',
            detail = format('worker "%s", lease expired %s ago', worker_id, now() - j.lease_expires_at),
            hint = 'renew leases more often than lease_seconds; the reaper will retry this job';
  end if;
  return j;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- enqueue_job: a signed-in user submits a job
-- ---------------------------------------------------------------------------------------------
create function public.enqueue_job(
  kind text,
  payload jsonb default '{}'::jsonb,
  idempotency_key text default null,
  priority integer default null,
  run_at timestamptz default null,
  depends_on uuid default null
) returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_uid uuid := auth.uid();
  v_kind public.job_kinds;
  v_size integer;
  v_priority integer;
  v_run_at timestamptz;
  v_parent public.jobs;
  v_status text := 'queued';
  v_error jsonb;
  v_finished timestamptz;
  v_recent integer;
  v_oldest timestamptz;
  v_job public.jobs;
begin
  if v_uid is null then
    raise exception 'enqueue_job: no signed-in user in the request'
      using errcode = '42501', hint = 'call it with a user''s access token (anonymous sign-in is enough)';
  end if;

  if enqueue_job.kind is null then
    perform private.raise_invalid('kind', 'must not be null');
  end if;
  select * into v_kind from public.job_kinds k where k.kind = enqueue_job.kind;
  if not found then
    perform private.raise_invalid('kind', format('unknown job kind "%s"', enqueue_job.kind),
      'known kinds: ' || (select string_agg(k.kind, ', ' order by k.kind) from public.job_kinds k));
  end if;

  if enqueue_job.payload is null or jsonb_typeof(enqueue_job.payload) <> 'object' then
    perform private.raise_invalid('payload',
      format('must be a JSON object, got %s', coalesce(jsonb_typeof(enqueue_job.payload), 'null')));
  end if;
  v_size := octet_length(enqueue_job.payload::text);
  if v_size > v_kind.max_payload_bytes then
    raise exception 'payload: % bytes exceeds the limit of % bytes for kind "%"', v_size, v_kind.max_payload_bytes, v_kind.kind
      using errcode = 'PT413', hint = 'send large inputs by reference (e.g. a Storage path), not inline';
  end if;

  v_priority := coalesce(enqueue_job.priority, v_kind.default_priority);
  if v_priority not between -100 and 100 then
    perform private.raise_invalid('priority', format('must be between -100 and 100, got %s', v_priority));
  end if;

  v_run_at := coalesce(enqueue_job.run_at, now());
  if v_run_at > now() + interval '30 days' then
    perform private.raise_invalid('run_at', format('must be within 30 days from now, got %s', v_run_at));
  end if;

  if enqueue_job.idempotency_key is not null and length(enqueue_job.idempotency_key) not between 1 and 200 then
    perform private.raise_invalid('idempotency_key',
      format('must be 1 to 200 characters, got %s', length(enqueue_job.idempotency_key)));
  end if;

  -- One submission at a time per user and kind: makes the rate limit and idempotency exact
  -- under concurrent calls. Held to the end of the transaction only.
  perform pg_advisory_xact_lock(private.lock_class('rate_limit'), private.group_key(v_uid, v_kind.kind));

  if enqueue_job.idempotency_key is not null then
    select * into v_job from public.jobs j
    where j.user_id = v_uid and j.idempotency_key = enqueue_job.idempotency_key;
    if found then
      if v_job.kind <> v_kind.kind or v_job.payload <> enqueue_job.payload then
        raise exception 'idempotency_key: "%" was already used for a different job', enqueue_job.idempotency_key
          using errcode = 'PT409',
                detail = format('existing job %s of kind %s', v_job.id, v_job.kind),
                hint = 'use a new key for a new job; reuse a key only to retry the same submission';
      end if;
      return v_job;  -- a retried submission: same job, no new row, not rate limited
    end if;
  end if;

  select count(*), min(j.created_at) into v_recent, v_oldest
  from (
    select j.created_at from public.jobs j
    where j.user_id = v_uid and j.kind = v_kind.kind and j.created_at > now() - interval '1 minute'
    order by j.created_at
    limit v_kind.rate_limit_per_minute
  ) j;
  if v_recent >= v_kind.rate_limit_per_minute then
    raise exception 'rate limit: at most % "%" jobs per minute per user', v_kind.rate_limit_per_minute, v_kind.kind
      using errcode = 'PT429',
            detail = format('%s jobs of this kind in the last minute', v_recent),
            hint = format('retry after %s seconds',
                          greatest(1, ceil(extract(epoch from (v_oldest + interval '1 minute' - now()))))::integer);
  end if;

  if enqueue_job.depends_on is not null then
    select * into v_parent from public.jobs j where j.id = enqueue_job.depends_on and j.user_id = v_uid;
    if not found then
      perform private.raise_invalid('depends_on', format('job %s not found among your jobs', enqueue_job.depends_on));
    end if;
    if v_parent.status in ('failed', 'cancelled') then
      -- The pipeline is already broken: the job is recorded, visibly cancelled for that reason.
      v_status := 'cancelled';
      v_finished := now();
      v_error := jsonb_build_object('type', 'dependency_failed', 'retryable', false, 'attempt', 0,
        'message', format('dependency %s %s', v_parent.id, v_parent.status));
    elsif v_parent.status <> 'succeeded' then
      v_status := 'waiting';
    end if;
  end if;

  insert into public.jobs as j
    (user_id, kind, status, priority, payload, max_attempts, run_at, idempotency_key, depends_on, error, finished_at)
  values
    (v_uid, v_kind.kind, v_status, v_priority, enqueue_job.payload, v_kind.max_attempts, v_run_at,
     enqueue_job.idempotency_key, enqueue_job.depends_on, v_error, v_finished)
  returning * into v_job;
  return v_job;
end;
$$;

comment on function public.enqueue_job(text, jsonb, text, integer, timestamptz, uuid) is
  'Submit a job as the signed-in user. Validates kind, payload (object, size), priority, run_at, idempotency key, dependency and the per-user rate limit (PT429).';

-- ---------------------------------------------------------------------------------------------
-- cancel_job: the owner cancels a job
-- ---------------------------------------------------------------------------------------------
create function public.cancel_job(job_id uuid) returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  j public.jobs;
begin
  if v_uid is null then
    raise exception 'cancel_job: no signed-in user in the request' using errcode = '42501';
  end if;
  if job_id is null then
    perform private.raise_invalid('job_id', 'must not be null');
  end if;
  select * into j from public.jobs where id = cancel_job.job_id and user_id = v_uid for update;
  if not found then
    raise exception 'job_id: job % not found', cancel_job.job_id using errcode = 'PT404';
  end if;

  if j.status in ('queued', 'waiting') then
    update public.jobs
    set status = 'cancelled', cancel_requested = true, finished_at = now(), lease_expires_at = null,
        error = jsonb_build_object('type', 'cancelled', 'message', 'cancelled by the user',
                                   'retryable', false, 'attempt', attempts)
    where id = j.id
    returning * into j;
  elsif j.status = 'running' then
    -- The worker sees the flag on its next heartbeat, stops, and records the cancellation.
    if not j.cancel_requested then
      update public.jobs set cancel_requested = true where id = j.id returning * into j;
    end if;
  elsif j.status in ('succeeded', 'failed') then
    raise exception 'job_id: job % already %; nothing to cancel', j.id, j.status using errcode = 'PT409';
  end if;
  return j;  -- cancelling a cancelled job is a no-op
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- claim_jobs: a worker takes due jobs with a lease
-- ---------------------------------------------------------------------------------------------
-- Exact per-user concurrency caps under concurrent claimers: jobs are grouped by (user, kind);
-- a claimer holds a transaction-scoped advisory lock on each group it claims from, and counts
-- that group's running jobs only after taking the lock, in a fresh snapshot (read committed), so
-- two claimers can never both fill the same free slot. Groups another claimer holds are skipped
-- (try-lock), except that a claimer that could lock none waits for the first one, so contention
-- costs a short wait instead of an empty claim. Rows are taken with FOR UPDATE SKIP LOCKED and
-- re-checked, so no job is ever claimed twice.
create function public.claim_jobs(
  worker_id text,
  kinds text[] default null,
  max_jobs integer default 1,
  lease_seconds integer default 60
) returns setof public.jobs
language plpgsql
security definer
set search_path = ''
-- The planning loop reads due jobs in claim order and usually stops after a few rows: plan it
-- for that (index order), not for reading them all (sort), or every claim costs O(queue).
set cursor_tuple_fraction = 0.001
as $$
declare
  v_unknown text;
  v_users uuid[] := '{}';
  v_kinds text[] := '{}';
  v_take integer[] := '{}';
  v_planned integer := 0;
  v_locked_any boolean := false;
  v_waiting_user uuid;
  v_waiting_kind text;
  v_cap integer;
  v_running integer;
  v_due integer;
  v_n integer;
  g record;
begin
  perform private.check_worker_id(worker_id);
  perform private.check_lease_seconds(lease_seconds);
  if max_jobs is null or max_jobs not between 1 and 1000 then
    perform private.raise_invalid('max_jobs', format('must be between 1 and 1000, got %s', coalesce(max_jobs::text, 'null')));
  end if;
  if kinds is not null then
    select string_agg(format('"%s"', k), ', ') into v_unknown
    from unnest(kinds) k where not exists (select 1 from public.job_kinds jk where jk.kind = k);
    if v_unknown is not null then
      perform private.raise_invalid('kinds', 'unknown job kind(s): ' || v_unknown);
    end if;
  end if;

  -- Plan: walk due jobs in claim order, one decision per (user, kind) group.
  for g in
    select j.user_id, j.kind
    from public.jobs j
    where j.status = 'queued' and j.run_at <= now() and (claim_jobs.kinds is null or j.kind = any(claim_jobs.kinds))
    order by j.priority desc, j.run_at, j.id
  loop
    exit when v_planned >= max_jobs;
    continue when exists (select 1 from unnest(v_users, v_kinds) p(u, k) where p.u = g.user_id and p.k = g.kind)
               or (g.user_id = v_waiting_user and g.kind = v_waiting_kind);
    if not pg_try_advisory_xact_lock(private.lock_class('claim_group'), private.group_key(g.user_id, g.kind)) then
      if v_waiting_user is null then
        v_waiting_user := g.user_id;
        v_waiting_kind := g.kind;
      end if;
      continue;
    end if;
    v_locked_any := true;
    select k.max_running_per_user into v_cap from public.job_kinds k where k.kind = g.kind;
    select count(*) into v_running from public.jobs r
      where r.status = 'running' and r.user_id = g.user_id and r.kind = g.kind;
    select count(*) into v_due from (
      select 1 from public.jobs q
      where q.status = 'queued' and q.run_at <= now() and q.user_id = g.user_id and q.kind = g.kind
      limit max_jobs) q;
    v_n := greatest(0, least(v_cap - v_running, v_due, max_jobs - v_planned));
    v_users := v_users || g.user_id;
    v_kinds := v_kinds || g.kind;
    v_take := v_take || v_n;
    v_planned := v_planned + v_n;
  end loop;

  if not v_locked_any and v_waiting_user is not null then
    -- Everything due is being claimed by others right now: wait for the first group, then plan it.
    perform pg_advisory_xact_lock(private.lock_class('claim_group'), private.group_key(v_waiting_user, v_waiting_kind));
    select k.max_running_per_user into v_cap from public.job_kinds k where k.kind = v_waiting_kind;
    select count(*) into v_running from public.jobs r
      where r.status = 'running' and r.user_id = v_waiting_user and r.kind = v_waiting_kind;
    v_users := array[v_waiting_user];
    v_kinds := array[v_waiting_kind];
    v_take := array[greatest(0, least(v_cap - v_running, max_jobs))];
  end if;

  return query
  with picked as (
    -- Per group, only the rows it may take (index jobs_queued_by_user_kind), then claim order.
    select c.id
    from unnest(v_users, v_kinds, v_take) as p(user_id, kind, take)
    cross join lateral (
      select j.id, j.priority, j.run_at
      from public.jobs j
      where j.user_id = p.user_id and j.kind = p.kind and j.status = 'queued' and j.run_at <= now()
      order by j.priority desc, j.run_at, j.id
      limit p.take
    ) c
    where p.take > 0
    order by c.priority desc, c.run_at, c.id
    limit max_jobs
  ),
  locked as (
    select j.id from public.jobs j
    where j.id in (select id from picked) and j.status = 'queued'
    for update skip locked
  ),
  claimed as (
    update public.jobs j
    set status = 'running',
        worker_id = claim_jobs.worker_id,
        attempts = j.attempts + 1,
        lease_expires_at = now() + make_interval(secs => lease_seconds),
        started_at = now()
    from locked
    where j.id = locked.id
    returning j.*
  )
  select * from claimed c order by c.priority desc, c.run_at, c.id;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- renew_leases: the worker's heartbeat
-- ---------------------------------------------------------------------------------------------
create function public.renew_leases(worker_id text, job_ids uuid[], lease_seconds integer default 60)
returns setof public.jobs
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.check_worker_id(worker_id);
  perform private.check_lease_seconds(lease_seconds);
  if coalesce(cardinality(job_ids), 0) > 1000 then
    perform private.raise_invalid('job_ids', format('at most 1000 ids per call, got %s', cardinality(job_ids)));
  end if;
  -- Only leases still held (running, same worker, not yet expired) are extended.
  update public.jobs j
  set lease_expires_at = now() + make_interval(secs => lease_seconds)
  where j.id = any(job_ids) and j.status = 'running' and j.worker_id = renew_leases.worker_id
    and j.lease_expires_at >= now();
  -- Every listed job's current row, so the worker sees lost leases and cancel requests.
  return query select * from public.jobs j where j.id = any(job_ids) order by j.id;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- report_progress: percent/message and streamed partial output
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
    perform private.raise_invalid('percent', format('must be between 0 and 100, got %s', percent));
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
  if run_at > now() + interval '1 day' then
    perform private.raise_invalid('run_at', format('must be within one day from now, got %s', run_at));
  end if;
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

create function public.release_jobs(worker_id text, job_ids uuid[]) returns setof public.jobs
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.check_worker_id(worker_id);
  -- Graceful shutdown: back to the queue, attempt given back; a requested cancel wins.
  -- job_ids null releases every job the worker holds.
  return query
  with held as (
    select j.id from public.jobs j
    where j.status = 'running' and j.worker_id = release_jobs.worker_id
      and (job_ids is null or j.id = any(job_ids))
    for update
  ),
  released as (
    update public.jobs j
    set status = case when j.cancel_requested then 'cancelled' else 'queued' end,
        finished_at = case when j.cancel_requested then now() end,
        attempts = greatest(0, j.attempts - 1),
        lease_expires_at = null,
        worker_id = case when j.cancel_requested then j.worker_id end,
        run_at = now()
    from held where j.id = held.id
    returning j.*
  )
  select * from released r order by r.id;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Maintenance: the reaper and retention (pg_cron runs them; the worker's sweep also reaps)
-- ---------------------------------------------------------------------------------------------
create function public.reap_expired_leases() returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  -- A lease that ran out means the worker died or stalled: the attempt counts (it was taken at
  -- claim time); retry with backoff if attempts remain, otherwise fail.
  with expired as (
    select j.id from public.jobs j
    where j.status = 'running' and j.lease_expires_at < now()
    for update skip locked
  ),
  reaped as (
    update public.jobs j
    set status = case
          when j.cancel_requested then 'cancelled'
          when j.attempts < j.max_attempts then 'queued'
          else 'failed' end,
        error = jsonb_build_object(
          'type', 'lease_expired',
          'message', format('worker "%s" lost its lease (expired %s)', j.worker_id, j.lease_expires_at),
          'retryable', j.attempts < j.max_attempts,
          'attempt', j.attempts),
        run_at = case when j.attempts < j.max_attempts then now() + private.retry_delay(j.attempts, random()) else j.run_at end,
        finished_at = case when j.cancel_requested or j.attempts >= j.max_attempts then now() end,
        worker_id = case when j.cancel_requested or j.attempts >= j.max_attempts then j.worker_id end,
        lease_expires_at = null
    from expired where j.id = expired.id
    returning j.id
  )
  select count(*) into v_count from reaped;
  return v_count;
end;
$$;

create function public.purge_finished_jobs(older_than interval default '7 days') returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  if older_than is null or older_than < interval '0' then
    perform private.raise_invalid('older_than', format('must be a non-negative interval, got %s', coalesce(older_than::text, 'null')));
  end if;
  with purged as (
    delete from public.jobs j
    where j.status in ('succeeded', 'failed', 'cancelled') and j.finished_at < now() - older_than
    returning 1
  )
  select count(*) into v_count from purged;
  return v_count;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Pipelines: when a job finishes, its waiting dependents move on
-- ---------------------------------------------------------------------------------------------
create function private.advance_dependents() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.status = 'succeeded' then
    update public.jobs set status = 'queued', run_at = greatest(run_at, now())
    where depends_on = new.id and status = 'waiting';
  else
    -- failed or cancelled: dependents are cancelled, which cascades down the pipeline.
    update public.jobs
    set status = 'cancelled', finished_at = now(),
        error = jsonb_build_object('type', 'dependency_failed', 'retryable', false, 'attempt', 0,
                                   'message', format('dependency %s %s', new.id, new.status))
    where depends_on = new.id and status = 'waiting';
  end if;
  return null;
end;
$$;

create trigger jobs_advance_dependents
  after update of status on public.jobs
  for each row
  when (old.status is distinct from new.status and new.status in ('succeeded', 'failed', 'cancelled'))
  execute function private.advance_dependents();

-- ---------------------------------------------------------------------------------------------
-- Privileges: users submit and cancel; only the service role runs the worker side.
-- ---------------------------------------------------------------------------------------------
revoke all on function
  public.enqueue_job(text, jsonb, text, integer, timestamptz, uuid),
  public.cancel_job(uuid),
  public.claim_jobs(text, text[], integer, integer),
  public.renew_leases(text, uuid[], integer),
  public.report_progress(uuid, text, numeric, text, text),
  public.complete_job(uuid, text, jsonb),
  public.fail_job(uuid, text, jsonb, boolean),
  public.defer_job(uuid, text, timestamptz, text),
  public.release_jobs(text, uuid[]),
  public.reap_expired_leases(),
  public.purge_finished_jobs(interval)
from public, anon, authenticated;

grant execute on function
  public.enqueue_job(text, jsonb, text, integer, timestamptz, uuid),
  public.cancel_job(uuid)
to authenticated;

grant execute on function
  public.claim_jobs(text, text[], integer, integer),
  public.renew_leases(text, uuid[], integer),
  public.report_progress(uuid, text, numeric, text, text),
  public.complete_job(uuid, text, jsonb),
  public.fail_job(uuid, text, jsonb, boolean),
  public.defer_job(uuid, text, timestamptz, text),
  public.release_jobs(text, uuid[]),
  public.reap_expired_leases(),
  public.purge_finished_jobs(interval)
to service_role;

revoke all on all functions in schema private from public, anon, authenticated;
