-- Retention end to end: deleting a job also deletes the files it left in Storage.
--
-- Hosted Storage refuses a direct SQL DELETE on storage.objects (trigger storage.protect_delete),
-- and a row deleted around it would orphan the bytes in the object store anyway: objects must go
-- through the Storage API (docs/hosted-platform.md §4.2). SQL cannot call that API, so deleting
-- jobs records what has to go in an outbox, in the same transaction (a trigger, so every way a
-- job row goes -- purge_finished_jobs, a user's account deleted, an operator's DELETE -- is
-- covered), and the worker, which holds the secret key, drains it through the Storage API:
--
--   claim_artifact_deletions   lease a batch (SKIP LOCKED: replicas never share one)
--   ack_artifact_deletions     drop the rows whose object is gone from storage.objects; a row whose
--                              object is still there stays, and is claimed again after its lease
--   enqueue_orphaned_artifacts objects in the bucket no job owns (uploaded after their job was
--                              deleted, or not in the <user_id>/<job_id>/ layout), older than a
--                              grace period, into the same outbox

-- A retention window: not null, 0 to max_value, finite (PostgreSQL 17 has infinite intervals).
create function private.check_interval(field text, value interval, max_value interval) returns void
language plpgsql
set search_path = ''
as $$
begin
  if value is null or value < interval '0' then
    perform private.raise_invalid(field, format('must be a non-negative interval, got %s', coalesce(value::text, 'null')));
  elsif not isfinite(value) or value > max_value then
    perform private.raise_invalid(field, format('must be at most %s, got %s', max_value, value));
  end if;
end;
$$;

-- purge_finished_jobs (20261123000500_jobs_outcomes.sql) checks its window with this too; the
-- outbox is filled by the trigger below, whatever deletes jobs.
create table public.artifact_deletions (
  id bigint generated always as identity primary key,
  bucket_id text not null,
  name text not null,
  -- The deleted job whose folder held the object; null for an orphan.
  job_id uuid,
  reason text not null check (reason in ('job_deleted', 'orphaned')),
  created_at timestamptz not null default now(),
  claimed_until timestamptz,
  attempts integer not null default 0 check (attempts >= 0),
  unique (bucket_id, name)
);

comment on table public.artifact_deletions is
  'Outbox of Storage objects to delete through the Storage API (the worker drains it); service role only.';

create index artifact_deletions_due on public.artifact_deletions (claimed_until nulls first, id);

alter table public.artifact_deletions enable row level security;
-- No policy: the API roles see nothing. The service role (BYPASSRLS) reads it for dashboards and
-- writes only through the functions below, so no row is dropped before its object is gone.
revoke all on table public.artifact_deletions from anon, authenticated, service_role;
revoke all on sequence public.artifact_deletions_id_seq from anon, authenticated, service_role;
grant select on table public.artifact_deletions to service_role;

-- ---------------------------------------------------------------------------------------------
-- Recording: every deleted job's objects (<user_id>/<job_id>/...), in the deleting transaction.
-- The path a result names inside the job's folder is recorded too: with WORKER_STORE=postgres
-- the worker keeps files in a folder, which storage.objects knows nothing about.
-- ---------------------------------------------------------------------------------------------
create function private.record_artifact_deletions() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.artifact_deletions (bucket_id, name, job_id, reason)
  select distinct on (f.name) 'job-artifacts', f.name, f.job_id, 'job_deleted'
  from (
    -- A hash join on the parsed folder: one pass over the bucket, however many jobs went.
    select o.name, g.id as job_id
    from gone g
    join storage.objects o
      on o.bucket_id = 'job-artifacts'
     and split_part(o.name, '/', 1) = g.user_id::text
     and split_part(o.name, '/', 2) = g.id::text
    union all
    select g.result ->> 'path', g.id
    from gone g
    where jsonb_typeof(g.result) = 'object'
      and starts_with(g.result ->> 'path', g.user_id::text || '/' || g.id::text || '/')
  ) f
  order by f.name
  on conflict (bucket_id, name) do nothing;
  return null;
end;
$$;

create trigger jobs_record_artifact_deletions
  after delete on public.jobs
  referencing old table as gone
  for each statement execute function private.record_artifact_deletions();

-- ---------------------------------------------------------------------------------------------
-- claim_artifact_deletions: max_items 1..1000 (hosted Storage deletes at most 1,000 objects per
-- request), lease_seconds 5..3600
-- ---------------------------------------------------------------------------------------------
create function public.claim_artifact_deletions(max_items integer default 100, lease_seconds integer default 300)
returns setof public.artifact_deletions
language plpgsql
security definer
set search_path = ''
as $$
begin
  if max_items is null or max_items not between 1 and 1000 then
    perform private.raise_invalid('max_items', format('must be between 1 and 1000, got %s', coalesce(max_items::text, 'null')));
  end if;
  perform private.check_lease_seconds(lease_seconds);
  return query
  update public.artifact_deletions d
  set claimed_until = now() + make_interval(secs => lease_seconds), attempts = d.attempts + 1
  where d.id in (
    select q.id from public.artifact_deletions q
    where q.claimed_until is null or q.claimed_until <= now()
    order by q.claimed_until nulls first, q.id
    limit max_items
    for update skip locked
  )
  returning d.*;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- ack_artifact_deletions: ids a non-empty one-dimensional array of at most 1,000 non-null ids.
-- Idempotent: an id already acknowledged answers "not in the outbox" and changes nothing.
-- ---------------------------------------------------------------------------------------------
create function public.ack_artifact_deletions(ids bigint[])
returns table (id bigint, acknowledged boolean, reason text)
language plpgsql
security definer
set search_path = ''
as $$
begin
  if ids is null or cardinality(ids) = 0 then
    perform private.raise_invalid('ids', 'must be a non-empty array of outbox ids');
  end if;
  perform private.check_array('ids', ids, 1000);
  return query
  with wanted as (
    select distinct u.id from unnest(ids) as u(id)
  ),
  checked as (
    select w.id, d.id is not null as queued,
           exists (select 1 from storage.objects o where o.bucket_id = d.bucket_id and o.name = d.name) as still_stored
    from wanted w
    left join public.artifact_deletions d on d.id = w.id
  ),
  acked as (
    delete from public.artifact_deletions d
    using checked r
    where d.id = r.id and r.queued and not r.still_stored
    returning d.id
  )
  select r.id,
         r.queued and not r.still_stored,
         case when not r.queued then 'not in the outbox'
              when r.still_stored then 'object still in storage' end
  from checked r
  order by r.id;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- enqueue_orphaned_artifacts: grace 0 to 10 years, max_items 1..10000
-- ---------------------------------------------------------------------------------------------
create function public.enqueue_orphaned_artifacts(grace interval default '1 day', max_items integer default 1000)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  perform private.check_interval('grace', grace, interval '10 years');
  if max_items is null or max_items not between 1 and 10000 then
    perform private.raise_invalid('max_items', format('must be between 1 and 10000, got %s', coalesce(max_items::text, 'null')));
  end if;
  with orphans as (
    select o.name
    from storage.objects o
    cross join lateral (
      select case when o.name ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/'
                  then split_part(o.name, '/', 2)::uuid end as job_id,
             split_part(o.name, '/', 1) as owner_folder
    ) p
    where o.bucket_id = 'job-artifacts'
      and coalesce(o.created_at, '-infinity') <= now() - grace
      and not exists (
        select 1 from public.jobs j where j.id = p.job_id and j.user_id::text = p.owner_folder
      )
      and not exists (
        select 1 from public.artifact_deletions d where d.bucket_id = o.bucket_id and d.name = o.name
      )
    order by o.name
    limit max_items
  ),
  queued as (
    insert into public.artifact_deletions (bucket_id, name, job_id, reason)
    select 'job-artifacts', orphans.name, null, 'orphaned' from orphans
    on conflict (bucket_id, name) do nothing
    returning 1
  )
  select count(*) into v_count from queued;
  return v_count;
end;
$$;
