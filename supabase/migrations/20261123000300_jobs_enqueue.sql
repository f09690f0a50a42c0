-- Submitting a job: enqueue_job, called by signed-in users under their own JWT.
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
-- enqueue_job: kind length, payload nesting and numbers, run_at window
-- ---------------------------------------------------------------------------------------------
create function public.enqueue_job(
  kind text,
  payload jsonb default '{}'::jsonb,
  idempotency_key text default null,
  priority integer default null,
  run_at timestamptz default null,
  depends_on uuid default null,
  cache boolean default true
) returns public.jobs
language plpgsql
security definer
set search_path = ''
-- Generic plans, made once per session, as claim_jobs': the rate-limit read's limit and the
-- arguments' values made a custom plan on most calls (bench/FIXES.md). Each statement's generic
-- plan reads indexes only (tests/sql/test_claim_planning.py checks it with thousands queued).
set plan_cache_mode = force_generic_plan
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
  v_source public.jobs;  -- the job a cache hit serves its result from
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
  -- The user's plan sets this kind's priority, rate limit and running cap (plans migration).
  v_kind := private.kind_on_plan(v_uid, v_kind);

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
  perform private.check_plan_priority(v_uid, v_kind, enqueue_job.priority);

  perform private.check_timestamp('run_at', enqueue_job.run_at, interval '1 day', interval '30 days');
  v_run_at := coalesce(enqueue_job.run_at, now());

  if enqueue_job.idempotency_key is not null and length(enqueue_job.idempotency_key) not between 1 and 200 then
    perform private.raise_invalid('idempotency_key',
      format('must be 1 to 200 characters, got %s', length(enqueue_job.idempotency_key)));
  end if;

  if enqueue_job.cache is null then
    perform private.raise_invalid('cache', 'must be true (use a stored result when there is one) or false (always run), got null');
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

  -- A hit costs nothing, so the budget does not refuse it; it is still a submission, so it
  -- counts for (and is held to) the rate limit below. A pipeline step always runs: its
  -- dependency decides whether and when.
  if enqueue_job.cache and enqueue_job.depends_on is null then
    v_source := private.cached_result(v_uid, v_kind.kind, enqueue_job.payload);
  end if;
  if v_source.id is null then
    perform private.check_budget(v_uid);
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

  if v_source.id is not null then
    -- Born succeeded: claim_jobs only takes queued rows, and the insert is broadcast as usual.
    insert into public.jobs as j
      (user_id, kind, status, priority, payload, result, progress, max_attempts, run_at, idempotency_key,
       started_at, finished_at, cached, cached_from)
    values
      (v_uid, v_kind.kind, 'succeeded', v_priority, enqueue_job.payload, v_source.result,
       jsonb_build_object('percent', 100, 'message', 'cached'), v_kind.max_attempts, v_run_at,
       enqueue_job.idempotency_key, now(), now(), true, v_source.id)
    returning * into v_job;
    return v_job;
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

comment on function public.enqueue_job(text, jsonb, text, integer, timestamptz, uuid, boolean) is
  'Submit a job as the signed-in user. Validates kind, payload (object, size), priority (at most the plan''s), run_at, idempotency key, dependency, the plan''s per-user rate limit (PT429) and budget (PT402). With cache (default true) an identical request within the kind''s cache TTL is answered from the result cache: the job is created succeeded and cached, costs 0 and skips the budget.';
