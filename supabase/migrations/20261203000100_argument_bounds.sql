-- Argument bounds: the SQL API refuses what the worker (or any client) cannot handle.
--
-- Why: enqueue_job stored run_at = '-infinity' (and dates BC); the worker could not parse the
-- claimed row and exited, so any signed-in user could keep every replica down (issue 10). Every
-- argument of every callable function was audited; this file adds what was missing:
--   timestamps  finite and inside a window around now(): enqueue_job.run_at from 1 day ago to
--               30 days ahead, defer_job.run_at from 1 day ago to 1 day ahead. The slack into the
--               past tolerates client clocks (or a local time sent as UTC); a past run_at means
--               "due now" and is stored as given, as before.
--   payload     at most 32 levels of objects/arrays and no number outside the double range
--               (Python's json gives up near 1,000 levels, in a deep call stack sooner; 1e400 or
--               a 5,000-digit integer cannot round-trip through Python or JavaScript).
--   kind(s)     kind at most 63 characters (the job_kinds pattern); kinds[] one-dimensional, at
--               most 100 names, no nulls; unknown names are listed, at most 5, each shortened.
--   job_ids     one-dimensional, at most 1,000 ids, no nulls (renew_leases, release_jobs).
--   older_than  finite, 0 to 10 years (a larger one overflowed now() - older_than: raw 22008).
--   percent     NaN and +-Infinity were already refused (in numeric they compare beyond 0..100);
--               the message now quotes at most 20 characters of the value (1e1000 was echoed
--               as 1,001 digits).
-- Already bounded before and left as they are: integers (priority, max_jobs, lease_seconds),
-- text lengths, jsonb types and sizes, complete_jobs' 1..1000 items.
-- NUL cannot reach a function body: PostgreSQL refuses it in text (22021) and jsonb (22P05,
-- "unsupported Unicode escape sequence") while converting the argument, before the call, so
-- nothing is written; the REST layer is what turns that into a 400 naming the field.
--
-- Every refusal is 22023 with a message starting with the field, raised before any write, so a
-- refused call changes nothing. The functions keep their signatures, so their grants survive
-- create or replace (tests/sql/test_row_bounds.py checks them).

-- ---------------------------------------------------------------------------------------------
-- Table level: a second line of defence for rows written by other paths (an operator, an older
-- version). Only the timestamps the worker parses (run_at, lease_expires_at) are constrained, to
-- an absolute range every client can represent in any time zone.
--
-- Existing rows outside that range are first moved to its nearest end (a -infinity run_at becomes
-- due at once, a -infinity lease is expired and reaped), then the constraints are added and
-- validated. Not NOT VALID: an unvalidated check still applies to every update, so a bad queued
-- row left in place would make each claim_jobs that reaches it fail with 23514 and stall the
-- queue. The table is locked first so no bad row can slip in between the repair and the check;
-- retention keeps the table small, so the lock is held for one short scan.
-- ---------------------------------------------------------------------------------------------
lock table public.jobs in access exclusive mode;

update public.jobs
set run_at = least(greatest(run_at, timestamptz '1970-01-01 00:00:00+00'), timestamptz '9999-01-01 00:00:00+00')
where run_at not between timestamptz '1970-01-01 00:00:00+00' and timestamptz '9999-01-01 00:00:00+00';

update public.jobs
set lease_expires_at = least(greatest(lease_expires_at, timestamptz '1970-01-01 00:00:00+00'),
                             timestamptz '9999-01-01 00:00:00+00')
where lease_expires_at not between timestamptz '1970-01-01 00:00:00+00' and timestamptz '9999-01-01 00:00:00+00';

alter table public.jobs
  add constraint jobs_run_at_in_range
    check (run_at between timestamptz '1970-01-01 00:00:00+00' and timestamptz '9999-01-01 00:00:00+00'),
  add constraint jobs_lease_expires_at_in_range
    check (lease_expires_at between timestamptz '1970-01-01 00:00:00+00' and timestamptz '9999-01-01 00:00:00+00');

-- ---------------------------------------------------------------------------------------------
-- Check helpers: each raises 22023 naming the field (private.raise_invalid); null passes, callers
-- decide what null means.
-- ---------------------------------------------------------------------------------------------

-- A value quoted in a message: at most max_chars characters, so a refusal never echoes megabytes.
create function private.excerpt(value text, max_chars integer) returns text
language sql immutable
set search_path = ''
as $$
  select case when length(value) > max_chars then left(value, max_chars - 3) || '...' else value end
$$;

-- A finite timestamp from now() - max_past to now() + max_ahead.
create function private.check_timestamp(field text, value timestamptz, max_past interval, max_ahead interval)
returns void
language plpgsql
set search_path = ''
as $$
begin
  if value is null then
    return;
  end if;
  if not isfinite(value) then
    perform private.raise_invalid(field, format('must be a finite timestamp, got %s', value));
  elsif value < now() - max_past then
    perform private.raise_invalid(field, format('must not be more than %s in the past, got %s', max_past, value));
  elsif value > now() + max_ahead then
    perform private.raise_invalid(field, format('must be within %s from now, got %s', max_ahead, value));
  end if;
end;
$$;

-- A one-dimensional array of at most max_items non-null elements.
create function private.check_array(field text, value anyarray, max_items integer) returns void
language plpgsql
set search_path = ''
as $$
begin
  if value is null then
    return;
  end if;
  if array_ndims(value) > 1 then
    perform private.raise_invalid(field, format('must be a one-dimensional array, got %s dimensions', array_ndims(value)));
  elsif cardinality(value) > max_items then
    perform private.raise_invalid(field, format('must hold at most %s items, got %s', max_items, cardinality(value)));
  elsif array_position(value, null) is not null then
    perform private.raise_invalid(field, format('must not contain null, got one at index %s (from 0)', array_position(value, null) - 1));
  end if;
end;
$$;

-- A list of known job kinds (claim_jobs, next_job_run_at).
create function private.check_kinds(field text, kinds text[]) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_unknown text;
begin
  perform private.check_array(field, kinds, 100);
  select string_agg(format('"%s"', private.excerpt(u.k, 63)), ', ')
  into v_unknown
  from (
    select k from unnest(kinds) k
    where not exists (select 1 from public.job_kinds jk where jk.kind = k)
    limit 5
  ) u;
  if v_unknown is not null then
    perform private.raise_invalid(field, 'unknown job kind(s): ' || v_unknown);
  end if;
end;
$$;

-- A JSON document every client can parse back: nesting of objects/arrays at most max_depth
-- levels (the document itself is level 1), numbers within the range of a double.
create function private.check_json(field text, value jsonb, max_depth integer) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_number jsonb;
begin
  if value is null then
    return;
  end if;
  -- A container at .** level max_depth (the root is level 0) is nested max_depth + 1 deep.
  if jsonb_path_exists(value,
       format('strict $.**{%s} ? (@.type() == "object" || @.type() == "array")', max_depth)::jsonpath) then
    perform private.raise_invalid(field, format('must not nest objects and arrays deeper than %s levels', max_depth));
  end if;
  v_number := jsonb_path_query_first(value,
    'strict $.** ? (@.type() == "number" && (@ > 1.7976931348623157e308 || @ < -1.7976931348623157e308))');
  if v_number is not null then
    perform private.raise_invalid(field, format('number %s is outside the range of a double (about 1.8e308)',
      private.excerpt(v_number::text, 40)));
  end if;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- enqueue_job: kind length, payload nesting and numbers, run_at window
-- ---------------------------------------------------------------------------------------------
create or replace function public.enqueue_job(
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
  elsif length(enqueue_job.kind) > 63 then
    perform private.raise_invalid('kind', format('must be at most 63 characters, got %s', length(enqueue_job.kind)));
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
  perform private.check_json('payload', enqueue_job.payload, 32);

  v_priority := coalesce(enqueue_job.priority, v_kind.default_priority);
  if v_priority not between -100 and 100 then
    perform private.raise_invalid('priority', format('must be between -100 and 100, got %s', v_priority));
  end if;

  perform private.check_timestamp('run_at', enqueue_job.run_at, interval '1 day', interval '30 days');
  v_run_at := coalesce(enqueue_job.run_at, now());

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

-- ---------------------------------------------------------------------------------------------
-- claim_jobs: kinds bounded (the rest of the function is unchanged)
-- ---------------------------------------------------------------------------------------------
create or replace function public.claim_jobs(
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
  perform private.check_kinds('kinds', kinds);

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
-- renew_leases / release_jobs: job_ids bounded the same way
-- ---------------------------------------------------------------------------------------------
create or replace function public.renew_leases(worker_id text, job_ids uuid[], lease_seconds integer default 60)
returns setof public.jobs
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.check_worker_id(worker_id);
  perform private.check_lease_seconds(lease_seconds);
  perform private.check_array('job_ids', job_ids, 1000);
  -- Only leases still held (running, same worker, not yet expired) are extended.
  update public.jobs j
  set lease_expires_at = now() + make_interval(secs => lease_seconds)
  where j.id = any(job_ids) and j.status = 'running' and j.worker_id = renew_leases.worker_id
    and j.lease_expires_at >= now();
  -- Every listed job's current row, so the worker sees lost leases and cancel requests.
  return query select * from public.jobs j where j.id = any(job_ids) order by j.id;
end;
$$;

create or replace function public.release_jobs(worker_id text, job_ids uuid[]) returns setof public.jobs
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.check_worker_id(worker_id);
  perform private.check_array('job_ids', job_ids, 1000);
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
-- report_progress: a refused percent is quoted briefly
-- ---------------------------------------------------------------------------------------------
create or replace function public.report_progress(
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
-- defer_job: run_at finite and within a day either side (a past one still means now)
-- ---------------------------------------------------------------------------------------------
create or replace function public.defer_job(job_id uuid, worker_id text, run_at timestamptz, reason text)
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
create or replace function public.purge_finished_jobs(older_than interval default '7 days') returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  if older_than is null or older_than < interval '0' then
    perform private.raise_invalid('older_than', format('must be a non-negative interval, got %s', coalesce(older_than::text, 'null')));
  elsif not isfinite(older_than) or older_than > interval '10 years' then
    -- isfinite: PostgreSQL 17 has infinite intervals.
    perform private.raise_invalid('older_than', format('must be at most 10 years, got %s', older_than));
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
-- next_job_run_at: kinds checked as claim_jobs checks them (now plpgsql, same signature)
-- ---------------------------------------------------------------------------------------------
create or replace function public.next_job_run_at(kinds text[] default null) returns timestamptz
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.check_kinds('kinds', kinds);
  return (
    select min(j.run_at)
    from public.jobs j
    where j.status = 'queued' and j.run_at > now() and (next_job_run_at.kinds is null or j.kind = any(next_job_run_at.kinds))
  );
end;
$$;

-- New helpers: not callable through the API (create function grants execute to public).
revoke all on all functions in schema private from public, anon, authenticated;
