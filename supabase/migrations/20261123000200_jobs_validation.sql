-- Private helpers of the queue API: argument checks (each raises 22023 naming the field; null
-- passes, callers decide what null means), advisory-lock keys, the retry delay, and the lease
-- check every worker-side call makes.
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

-- Helpers that run per job or per row are plpgsql even when one expression would do: a SQL
-- function with SET search_path is never inlined, and PostgreSQL up to 17 plans its body again
-- on every call (10-20 us each), while plpgsql keeps the plan for the session (bench/FIXES.md).
-- Advisory-lock namespaces (the two-key form keeps them apart from any other user of advisory locks).
create function private.lock_class(name text) returns integer
language plpgsql immutable
set search_path = ''
as $$
begin
  return case name when 'rate_limit' then 7301 when 'claim_group' then 7302 end;
end;
$$;

create function private.group_key(user_id uuid, kind text) returns integer
language plpgsql immutable
set search_path = ''
as $$
begin
  return hashtext(user_id::text || '/' || kind);
end;
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

-- A value quoted in a message: at most max_chars characters, so a refusal never echoes megabytes.
create function private.excerpt(value text, max_chars integer) returns text
language sql immutable
set search_path = ''
as $$
  select case when length(value) > max_chars then left(value, max_chars - 3) || '...' else value end
$$;

-- The worker's batch arguments (complete_jobs, report_progress_batch, record_usage_batch): a JSON
-- array of 1 to 1000 objects (``shape`` names their keys in the message), each with only the
-- allowed keys and a job_id that is a UUID string. Checked item by item, in the caller's loop, so
-- the first bad item is the one named.
create function private.check_batch(field text, items jsonb, shape text) returns void
language plpgsql
set search_path = ''
as $$
declare
  n integer;
begin
  if items is null or jsonb_typeof(items) <> 'array' then
    perform private.raise_invalid(field,
      format('must be a JSON array of %s objects, got %s', shape, coalesce(jsonb_typeof(items), 'null')));
  end if;
  n := jsonb_array_length(items);
  if n = 0 or n > 1000 then
    perform private.raise_invalid(field, format('must hold 1 to 1000 items, got %s', n));
  end if;
end;
$$;

-- An item of a batch: an object with only the allowed keys (check_batch_item adds the job id).
create function private.check_batch_object(field text, item jsonb, allowed text[]) returns void
language plpgsql
set search_path = ''
as $$
declare
  k text;
begin
  if jsonb_typeof(item) <> 'object' then
    perform private.raise_invalid(field, format('must be an object, got %s', jsonb_typeof(item)));
  end if;
  for k in select jsonb_object_keys(item) loop
    if not k = any(allowed) then
      perform private.raise_invalid(field, format('unknown key "%s"; allowed: %s', k, array_to_string(allowed, ', ')));
    end if;
  end loop;
end;
$$;

-- A batch item's JSON fields: a string (absent counts as "nothing"), and an optional integer in
-- integer's range (absent or null passes; the caller says whether it is required).
create function private.check_json_string(field text, value jsonb) returns void
language plpgsql
set search_path = ''
as $$
begin
  if jsonb_typeof(value) is distinct from 'string' then
    perform private.raise_invalid(field, format('must be a string, got %s', coalesce(jsonb_typeof(value), 'nothing')));
  end if;
end;
$$;

create function private.check_json_integer(field text, value jsonb) returns void
language plpgsql
set search_path = ''
as $$
begin
  if coalesce(jsonb_typeof(value), 'null') = 'null' then
    return;
  end if;
  if jsonb_typeof(value) <> 'number' then
    perform private.raise_invalid(field, format('must be an integer, got %s', private.excerpt(value::text, 80)));
  end if;
  if (value #>> '{}')::numeric <> trunc((value #>> '{}')::numeric) or abs((value #>> '{}')::numeric) > 2147483647 then
    perform private.raise_invalid(field, format('must be an integer, got %s', private.excerpt(value::text, 80)));
  end if;
end;
$$;

create function private.check_batch_item(field text, item jsonb, allowed text[]) returns void
language plpgsql
set search_path = ''
as $$
begin
  perform private.check_batch_object(field, item, allowed);
  if jsonb_typeof(item -> 'job_id') is distinct from 'string'
     or item ->> 'job_id' !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    perform private.raise_invalid(field || '.job_id', 'must be a UUID string');
  end if;
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
-- A generic plan: every claim passes here with the worker's kinds, and the custom plan the
-- plan cache kept choosing was planned again on each call (~110 of ~150 µs).
create function private.check_kinds(field text, kinds text[]) returns void
language plpgsql
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_unknown text;
begin
  if kinds is null then
    return;  -- any kind; every claim passes here, so no query for it
  end if;
  perform private.check_array(field, kinds, 100);
  select string_agg(format('"%s"', private.excerpt(u.k, 63)), ', ' order by u.n)
  into v_unknown
  from (
    select k, n from unnest(kinds) with ordinality as t(k, n)
    where not exists (select 1 from public.job_kinds jk where jk.kind = t.k)
    order by n
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
