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
language plpgsql stable
set search_path = ''
as $$
declare
  v_key bytea;
begin
  select sha256(convert_to(jsonb_build_array(
    k.kind,
    p_payload,
    coalesce((select jsonb_agg(jsonb_build_array(m.provider, m.model) order by m.position)
              from public.kind_models m where m.kind = k.kind), '[]'::jsonb),
    k.prompt_version)::text, 'UTF8'))
  into v_key
  from public.job_kinds k where k.kind = p_kind;
  return v_key;
end;
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
-- ``succeeded``: the jobs (not cache hits) one statement moved to succeeded. Called once per such
-- statement by the jobs' statement trigger (jobs_wake_on_update, 20261204000600_worker_wakeups.sql),
-- not by a row trigger: that was a PL/pgSQL call for every success (bench/FIXES.md). Two jobs
-- with the same key finishing in one statement leave one entry (ON CONFLICT cannot update a row
-- twice in one statement).
create function private.store_cached_results(succeeded uuid[]) returns void
language plpgsql
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
declare
  v_caching text[];
begin
  -- Most kinds do not cache: no job is read then.
  select array_agg(k.kind) into v_caching from public.job_kinds k where k.cache_ttl_seconds > 0;
  if v_caching is null then
    return;
  end if;
  -- Each job by its primary key (a join was planned, generically, as a read of the whole table).
  insert into public.job_result_cache as c (cache_key, user_id, kind, job_id)
  select distinct on (e.cache_key, e.user_id) e.cache_key, e.user_id, e.kind, e.id
  from unnest(succeeded) as s(id)
  cross join lateral (
    select private.cache_key(j.kind, j.payload) as cache_key, j.user_id, j.kind, j.id
    from public.jobs j
    where j.id = s.id and j.status = 'succeeded' and not j.cached and j.kind = any(v_caching)
  ) e
  order by e.cache_key, e.user_id, e.id desc
  on conflict (cache_key, user_id) do update set job_id = excluded.job_id, created_at = now();
end;
$$;

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
-- enqueue_job's `cache` argument, its lookup (private.cached_result) and the hit insert are in
-- 20261123000300_jobs_enqueue.sql (each function defined once). purge_finished_jobs
-- (20261123000500_jobs_outcomes.sql) calls this: expired cache entries are those older than
-- their kind's TTL, and every entry of a kind that no longer caches. Entries of purged jobs go
-- with them (foreign key).
-- ---------------------------------------------------------------------------------------------
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
revoke all on function private.cache_key(text, jsonb), private.cached_result(uuid, text, jsonb),
  private.store_cached_results(uuid[]), private.delete_cached_copies(), private.purge_expired_cache_entries()
  from public, anon, authenticated;
