-- enqueue_job and claim_jobs with plans and budgets. Both are the released functions unchanged
-- except for calls to the helpers of 20261204000100_plans.sql and 20261204000110_usage_ledger.sql:
--   enqueue_job: the kind's limits come from the user's plan (private.kind_on_plan): its priority
--     is the default and the ceiling (private.check_plan_priority, 400 naming `priority` and the
--     plan), its rate limit applies; then the budget (private.check_budget, PT402), after the
--     idempotency lookup so a retried submission still returns its job.
--   claim_jobs: the per-user running cap is the plan's (private.running_cap).
-- Errors: as in 20261123000300_jobs_enqueue.sql, plus PT402 -> 402 (budget spent).

-- A user's running cap for a kind under their plan.
create function private.running_cap(p_user uuid, p_kind text) returns integer
language sql stable
set search_path = ''
as $$
  select (private.kind_on_plan(p_user, k)).max_running_per_user from public.job_kinds k where k.kind = p_kind
$$;

-- ---------------------------------------------------------------------------------------------
-- enqueue_job
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

  perform private.check_budget(v_uid);

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
  'Submit a job as the signed-in user. Validates kind, payload (object, size), priority (at most the plan''s), run_at, idempotency key, dependency, the plan''s per-user rate limit (PT429) and budget (PT402).';

-- ---------------------------------------------------------------------------------------------
-- claim_jobs
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
    v_cap := private.running_cap(g.user_id, g.kind);
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
    v_cap := private.running_cap(v_waiting_user, v_waiting_kind);
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

