-- Result cache (issue 13, deliverable 5): an identical request within its kind's TTL is answered
-- from a stored result, without a model call.
--
-- Identical means the same cache key: sha256 over the kind, the payload (jsonb is canonical:
-- key order and whitespace do not matter), the kind's model chain (public.kind_models, in order;
-- a kind without a chain uses the model the worker's environment names, which SQL cannot see, so
-- its key holds an empty chain: bump prompt_version when changing MODEL_<KIND>) and the kind's
-- prompt_version (bumped by operators when a handler's prompt changes).
--
--   job_kinds.cache_ttl_seconds  null or 0: no cache (the default); at most 30 days
--   job_kinds.cache_scope        'user' (default; results may hold the user's data): only the same
--                                user's results match; 'shared': any user's, except results
--                                that name a Storage object (result.path), which are only served
--                                to their owner, so no storage policy has to widen who reads what
--   enqueue_job(..., cache => false)  bypasses the lookup for one request (its result still
--                                refreshes the cache)
--
-- A hit is a new job born `succeeded`, `cached`, `cached_from` the job that produced the result:
-- claim_jobs never sees it, no usage is recorded (cost 0), the budget does not refuse it, the
-- rate limit counts it, and its insert is broadcast as any job's. Pipeline steps (depends_on) are
-- never served from the cache.
--
-- Storing: a trigger on the one transition to succeeded (complete_job, complete_jobs). An entry
-- lives as long as its job: it goes with it (foreign key), and a cached image job goes with the
-- job it was served from, whose objects the retention outbox then deletes (the image is that
-- job's object), so no job is left pointing at a deleted object. purge_finished_jobs also drops
-- expired entries.

alter table public.job_kinds
  add column prompt_version text not null default '1'
    check (prompt_version ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
  add column cache_ttl_seconds integer check (cache_ttl_seconds between 0 and 2592000),
  add column cache_scope text not null default 'user' check (cache_scope in ('user', 'shared'));

comment on column public.job_kinds.prompt_version is 'Part of the result-cache key: bump it when the kind''s prompt or model choice changes.';
comment on column public.job_kinds.cache_ttl_seconds is 'How long a result answers identical requests; null or 0: no result cache.';
comment on column public.job_kinds.cache_scope is '''user'': a user''s own results only; ''shared'': any user''s (except Storage objects).';

alter table public.jobs
  add column cached boolean not null default false,
  -- No foreign key: a cached text result outlives the job it came from (see the trigger below).
  add column cached_from uuid,
  add constraint jobs_cached_is_succeeded check (not cached or (status = 'succeeded' and cached_from is not null));

comment on column public.jobs.cached is 'Answered from the result cache: no model call, no cost.';
comment on column public.jobs.cached_from is 'The job whose result a cached job carries (it may have been purged since).';

create index jobs_cached_from on public.jobs (cached_from) where cached;

create table public.job_result_cache (
  cache_key bytea not null check (octet_length(cache_key) = 32),
  user_id uuid not null references auth.users (id) on delete cascade,
  kind text not null references public.job_kinds (kind) on delete cascade,
  job_id uuid not null unique references public.jobs (id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (cache_key, user_id)
);

comment on table public.job_result_cache is
  'Result cache: the newest succeeded job per (cache key, user); the result is read from the job. Service role only.';

create index job_result_cache_by_key on public.job_result_cache (cache_key, created_at desc);
create index job_result_cache_by_kind on public.job_result_cache (kind, created_at);

alter table public.job_result_cache enable row level security;
-- No policy: users never read it (a shared entry names another user's job). Written only by the
-- trigger and purge below.
revoke all on table public.job_result_cache from public, anon, authenticated, service_role;
grant select on table public.job_result_cache to service_role;

-- ---------------------------------------------------------------------------------------------
-- The key, and the lookup enqueue_job makes.
-- ---------------------------------------------------------------------------------------------
create function private.cache_key(p_kind text, p_payload jsonb) returns bytea
language sql stable
set search_path = ''
as $$
  select sha256(convert_to(jsonb_build_array(
    k.kind,
    p_payload,
    coalesce((select jsonb_agg(jsonb_build_array(m.provider, m.model) order by m.position)
              from public.kind_models m where m.kind = k.kind), '[]'::jsonb),
    k.prompt_version)::text, 'UTF8'))
  from public.job_kinds k where k.kind = p_kind
$$;

-- The job whose result answers this request, or a row of nulls on a miss. The TTL is the kind's
-- current one, so lowering it takes effect at once.
create function private.cached_result(p_user uuid, p_kind text, p_payload jsonb) returns public.jobs
language plpgsql stable
set search_path = ''
as $$
declare
  v_kind public.job_kinds;
  v_job public.jobs;
begin
  select * into v_kind from public.job_kinds k where k.kind = p_kind;
  if coalesce(v_kind.cache_ttl_seconds, 0) = 0 then
    return v_job;
  end if;
  select j.* into v_job
  from public.job_result_cache c
  join public.jobs j on j.id = c.job_id
  where c.cache_key = private.cache_key(p_kind, p_payload)
    and c.created_at > now() - make_interval(secs => v_kind.cache_ttl_seconds)
    and j.status = 'succeeded'
    and (c.user_id = p_user
         or (v_kind.cache_scope = 'shared' and not (jsonb_typeof(j.result) = 'object' and j.result ? 'path')))
  order by (c.user_id = p_user) desc, c.created_at desc
  limit 1;
  return v_job;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Storing: every job of a caching kind that becomes succeeded by running (not by a hit).
-- ---------------------------------------------------------------------------------------------
create function private.store_cached_result() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if coalesce((select k.cache_ttl_seconds from public.job_kinds k where k.kind = new.kind), 0) > 0 then
    insert into public.job_result_cache as c (cache_key, user_id, kind, job_id)
    values (private.cache_key(new.kind, new.payload), new.user_id, new.kind, new.id)
    on conflict (cache_key, user_id) do update set job_id = excluded.job_id, created_at = now();
  end if;
  return null;
end;
$$;

create trigger jobs_store_cached_result
  after update of status on public.jobs
  for each row
  when (old.status is distinct from new.status and new.status = 'succeeded' and not new.cached)
  execute function private.store_cached_result();

-- A cached job whose result names a Storage object (an image) points into the folder of the job
-- it was served from; when that job goes, its objects go to the deletion outbox, so the cached
-- jobs go with it (their own folders are empty: the retention trigger records nothing for them).
create function private.delete_cached_copies() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Only when there is something to delete: a DELETE fires this statement trigger again, even
  -- for no rows.
  if exists (select 1 from public.jobs j join gone g on j.cached_from = g.id
             where j.cached and jsonb_typeof(j.result) = 'object' and j.result ? 'path') then
    delete from public.jobs j
    using gone g
    where j.cached and j.cached_from = g.id
      and jsonb_typeof(j.result) = 'object' and j.result ? 'path';
  end if;
  return null;
end;
$$;

create trigger jobs_delete_cached_copies
  after delete on public.jobs
  referencing old table as gone
  for each statement execute function private.delete_cached_copies();

-- ---------------------------------------------------------------------------------------------
-- enqueue_job: 20261204000120's, plus `cache` (a new argument, so the old signature is dropped
-- first: two overloads would make every call ambiguous), the lookup and the hit insert.
-- ---------------------------------------------------------------------------------------------
drop function public.enqueue_job(text, jsonb, text, integer, timestamptz, uuid);

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

-- ---------------------------------------------------------------------------------------------
-- purge_finished_jobs (20261204000300), plus expired cache entries: those older than their
-- kind's TTL, and every entry of a kind that no longer caches. Entries of purged jobs go with
-- them (foreign key).
-- ---------------------------------------------------------------------------------------------
create or replace function public.purge_finished_jobs(older_than interval default '7 days') returns integer
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

create function private.purge_expired_cache_entries() returns void
language sql
security definer
set search_path = ''
as $$
  delete from public.job_result_cache c
  using public.job_kinds k
  where k.kind = c.kind
    and (coalesce(k.cache_ttl_seconds, 0) = 0 or c.created_at <= now() - make_interval(secs => k.cache_ttl_seconds))
$$;

-- Grants as in 20261123001000_jobs_grants.sql.
revoke all on function public.enqueue_job(text, jsonb, text, integer, timestamptz, uuid, boolean) from public, anon, authenticated;
grant execute on function public.enqueue_job(text, jsonb, text, integer, timestamptz, uuid, boolean) to authenticated;
revoke all on function private.cache_key(text, jsonb), private.cached_result(uuid, text, jsonb),
  private.store_cached_result(), private.delete_cached_copies(), private.purge_expired_cache_entries()
  from public, anon, authenticated;
