-- Platform bootstrap: what a hosted Supabase project already has before our migrations run.
-- Local only (devstack). Never part of supabase/migrations, which must run unchanged on hosted
-- Supabase. Reproduces the facts of shared/docs/supabase-wire-protocols.md §D.
-- Idempotent per database; roles are cluster-wide, so they are created only when missing.

-- ---------------------------------------------------------------------------------------------
-- Roles
-- ---------------------------------------------------------------------------------------------
do $$
begin
  -- initdb's superuser is supabase_admin (older devstack clusters: postgres, demoted below).
  if not exists (select 1 from pg_roles where rolname = 'postgres') then
    create role postgres login password 'postgres' nosuperuser createdb createrole replication bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    -- The gateway logs in as authenticator and switches role per request, as PostgREST does.
    create role authenticator login noinherit password 'authenticator';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_admin') then
    create role supabase_admin login superuser createdb createrole replication bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin noinherit createrole login password 'supabase_auth_admin';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin noinherit createrole login password 'supabase_storage_admin';
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;

-- Everything below is made by supabase_admin, as on hosted (on a cluster initdb made with
-- postgres, the first run connects as postgres, demoted at the end). Its password is postgres's:
-- local only. The project's database belongs to postgres, as on hosted.
alter role supabase_admin password 'postgres';
set local role supabase_admin;
do $$
begin
  execute format('alter database %I owner to postgres', current_database());
end
$$;

alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
-- The login role's own limits (supabase/postgres migrations 20221028101028, 20231130133139): every
-- API request, service_role's included, runs under them unless the role sets its own.
alter role authenticator set statement_timeout = '8s';
alter role authenticator set lock_timeout = '8s';
-- The API roles inherit, as upstream (20230529180330_alter_api_roles_for_inherit.sql).
alter role anon inherit;
alter role authenticated inherit;
alter role service_role inherit;

-- ---------------------------------------------------------------------------------------------
-- Extensions schema
-- ---------------------------------------------------------------------------------------------
create schema if not exists extensions;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
do $$
begin
  execute format('alter database %I set search_path = "$user", public, extensions', current_database());
end
$$;

-- ---------------------------------------------------------------------------------------------
-- public: hosted grants usage and default privileges to the API roles
-- ---------------------------------------------------------------------------------------------
grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------------------------
-- auth (GoTrue's schema, reduced to what the Auth stand-in and our migrations use)
-- ---------------------------------------------------------------------------------------------
create schema if not exists auth authorization supabase_auth_admin;
grant usage on schema auth to anon, authenticated, service_role, postgres;

create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb not null default '{}'::jsonb,
  raw_user_meta_data jsonb not null default '{}'::jsonb,
  is_super_admin boolean,
  phone text,
  phone_confirmed_at timestamptz,
  confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
  banned_until timestamptz,
  deleted_at timestamptz,
  is_anonymous boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index if not exists users_email_partial_key on auth.users (email) where is_anonymous = false and email is not null;

create table if not exists auth.sessions (
  id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  aal text not null default 'aal1',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  not_after timestamptz
);

create table if not exists auth.refresh_tokens (
  id bigserial primary key,
  token varchar(255) not null unique,
  user_id uuid not null references auth.users (id) on delete cascade,
  session_id uuid references auth.sessions (id) on delete cascade,
  revoked boolean not null default false,
  parent varchar(255),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- How each session was authenticated (GoTrue's `amr` claim), as hosted keeps it.
create table if not exists auth.mfa_amr_claims (
  id uuid primary key,
  session_id uuid not null references auth.sessions (id) on delete cascade,
  authentication_method text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint mfa_amr_claims_session_id_authentication_method_pkey unique (session_id, authentication_method)
);
create index if not exists refresh_tokens_session_id_revoked_idx on auth.refresh_tokens (session_id, revoked);
create index if not exists sessions_user_id_idx on auth.sessions (user_id);

alter table auth.users owner to supabase_auth_admin;
alter table auth.sessions owner to supabase_auth_admin;
alter table auth.refresh_tokens owner to supabase_auth_admin;
alter table auth.mfa_amr_claims owner to supabase_auth_admin;
-- Hosted: no API role has table rights in auth, service_role included (supabase/auth migration
-- 20240612123726_enable_rls_update_grants), and the tables have RLS on; postgres may read them
-- (SELECT with grant option). Revoked explicitly: older devstack clusters granted service_role.
revoke all on all tables in schema auth from anon, authenticated, service_role;
revoke all on all sequences in schema auth from anon, authenticated, service_role;
grant all on all tables in schema auth to postgres;
grant all on all sequences in schema auth to postgres;
alter table auth.users enable row level security;
alter table auth.sessions enable row level security;
alter table auth.refresh_tokens enable row level security;
alter table auth.mfa_amr_claims enable row level security;

-- The helpers read the claims exactly as hosted: the legacy per-claim GUC first, then the JSON.
create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role, postgres;

-- ---------------------------------------------------------------------------------------------
-- realtime (Broadcast from Database)
-- ---------------------------------------------------------------------------------------------
create schema if not exists realtime;
grant usage on schema realtime to postgres, anon, authenticated, service_role;

-- Partitioned by day as upstream (supabase/realtime 20241030150047_messages_partitioning): an
-- insert for a day without a partition fails, and realtime.send turns that into a WARNING, so a
-- broadcast is lost silently, as on hosted. Hosted's janitor keeps yesterday .. today+3 and drops
-- partitions older than 72 h; here realtime.devstack_maintain_partitions() does it, run below and
-- by the gateway (at start and every hour).
create table if not exists realtime.messages (
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp without time zone not null default now(),
  inserted_at timestamp without time zone not null default now(),
  id uuid not null default gen_random_uuid(),
  primary key (id, inserted_at)
) partition by range (inserted_at);
create index if not exists messages_inserted_at_topic_index on realtime.messages (inserted_at desc, topic);
do $$
begin
  if (select relkind from pg_class where oid = 'realtime.messages'::regclass) <> 'p' then
    raise notice 'realtime.messages predates devstack''s daily partitions (hosted''s layout): '
      '`python -m devstack db reset` recreates the database with them';
  end if;
end
$$;

create or replace function realtime.devstack_maintain_partitions() returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  day date;
  part record;
begin
  if (select relkind from pg_class where oid = 'realtime.messages'::regclass) <> 'p' then
    return;
  end if;
  for day in select generate_series(current_date - 1, current_date + 3, interval '1 day')::date loop
    execute format(
      'create table if not exists realtime.%I partition of realtime.messages for values from (%L) to (%L)',
      'messages_' || to_char(day, 'YYYY_MM_DD'), day, day + 1
    );
  end loop;
  for part in
    select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'realtime.messages'::regclass
      and c.relname ~ '^messages_\d{4}_\d{2}_\d{2}$'
      and to_date(substr(c.relname, 10), 'YYYY_MM_DD') + 1 < (now() at time zone 'utc' - interval '72 hours')::date
  loop
    execute format('drop table realtime.%I', part.relname);
  end loop;
end
$$;
revoke all on function realtime.devstack_maintain_partitions() from public;
select realtime.devstack_maintain_partitions();
alter table realtime.messages enable row level security;
grant select, insert, update on realtime.messages to anon, authenticated, service_role;
grant all on realtime.messages to postgres;

create or replace function realtime.topic() returns text
language sql stable
as $$
  select nullif(current_setting('realtime.topic', true), '')::text;
$$;
grant execute on function realtime.topic() to anon, authenticated, service_role, postgres;

-- As hosted: set the topic for policies, insert, and turn any failure into a WARNING so a
-- broadcast can never abort the caller's transaction.
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language plpgsql
as $$
declare
  generated_id uuid;
  final_payload jsonb;
begin
  begin
    generated_id := gen_random_uuid();
    final_payload := case
      when payload ? 'id' then payload
      else jsonb_set(payload, '{id}', to_jsonb(generated_id))
    end;
    perform set_config('realtime.topic', topic, true);
    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (generated_id, final_payload, event, topic, private, 'broadcast');
  exception
    when others then
      raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;

create or replace function realtime.broadcast_changes(
  topic_name text, event_name text, operation text, table_name text, table_schema text,
  new record, old record, level text default 'ROW'
) returns void
language plpgsql
as $$
declare
  row_data jsonb := '{}'::jsonb;
begin
  if level = 'STATEMENT' then
    raise exception 'function can only be triggered for each row, not for each statement';
  end if;
  if operation = 'INSERT' or operation = 'UPDATE' or operation = 'DELETE' then
    row_data := jsonb_build_object(
      'old_record', case when old is null then null else to_jsonb(old) end,
      'record', case when new is null then null else to_jsonb(new) end,
      'operation', operation,
      'table', table_name,
      'schema', table_schema
    );
    perform realtime.send(row_data, event_name, topic_name);
  else
    raise exception 'Unexpected operation type: %', operation;
  end if;
end;
$$;

grant execute on function realtime.send(jsonb, text, text, boolean) to anon, authenticated, service_role, postgres;
grant execute on function realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  to anon, authenticated, service_role, postgres;

-- ---------------------------------------------------------------------------------------------
-- storage (metadata for the Storage stand-in; objects' bytes live on disk under .devstack/)
-- ---------------------------------------------------------------------------------------------
create schema if not exists storage authorization supabase_storage_admin;
grant usage on schema storage to postgres, anon, authenticated, service_role;

create table if not exists storage.buckets (
  id text primary key,
  name text not null unique,
  owner uuid,
  owner_id text,
  public boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  created_at timestamptz default now(),
  updated_at timestamptz default now()
);

create table if not exists storage.objects (
  id uuid primary key default gen_random_uuid(),
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  owner_id text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  user_metadata jsonb,
  unique (bucket_id, name)
);

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
grant all on storage.buckets, storage.objects to anon, authenticated, service_role, postgres;

create or replace function storage.foldername(name text) returns text[]
language plpgsql immutable
as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[1 : array_length(_parts, 1) - 1];
end
$$;

create or replace function storage.filename(name text) returns text
language plpgsql immutable
as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end
$$;

create or replace function storage.extension(name text) returns text
language plpgsql immutable
as $$
declare
  _parts text[];
  _filename text;
begin
  select string_to_array(name, '/') into _parts;
  select _parts[array_length(_parts, 1)] into _filename;
  return reverse(split_part(reverse(_filename), '.', 1));
end
$$;

grant execute on function storage.foldername(text), storage.filename(text), storage.extension(text)
  to anon, authenticated, service_role, postgres;

-- Hosted Storage refuses a direct SQL DELETE on its tables (supabase/storage migration 0055,
-- "protect_delete"): rows and bytes must go together, through the Storage API, which sets the
-- transaction-local setting storage.allow_delete_query = 'true' around its own deletes.
create or replace function storage.protect_delete() returns trigger
language plpgsql
as $$
begin
  if coalesce(current_setting('storage.allow_delete_query', true), '') <> 'true' then
    raise exception 'Direct deletion from storage tables is not allowed. Use the Storage API instead.'
      using errcode = '42501', hint = 'This prevents accidental data loss from orphaned objects.';
  end if;
  return null;
end
$$;
drop trigger if exists protect_buckets_delete on storage.buckets;
create trigger protect_buckets_delete before delete on storage.buckets
  for each statement execute function storage.protect_delete();
drop trigger if exists protect_objects_delete on storage.objects;
create trigger protect_objects_delete before delete on storage.objects
  for each statement execute function storage.protect_delete();

-- ---------------------------------------------------------------------------------------------
-- Publication for Postgres Changes (empty; migrations add tables)
-- ---------------------------------------------------------------------------------------------
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;

-- Migration history, as the Supabase CLI keeps it (it runs as postgres, which owns it).
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text primary key,
  statements text[],
  name text
);
alter schema supabase_migrations owner to postgres;
alter table supabase_migrations.schema_migrations owner to postgres;

-- ---------------------------------------------------------------------------------------------
-- postgres as on hosted (supabase/postgres migrations/db, docs §4.2): NOSUPERUSER CREATEDB
-- CREATEROLE REPLICATION BYPASSRLS (10000000000000_demote-postgres), no CREATE on the platform
-- schemas (20250421084701), USAGE with grant option on storage and realtime (20250709135250,
-- 20260506172403), ALL with grant option on storage's tables (20250623125453), the predefined
-- roles and pg_reload_conf() (20230306081037, 20240606060239, 20251105172723), the API roles
-- with ADMIN OPTION on 16+ (20250605172253). What supautils grants it on hosted, devstack grants
-- by other means (deliberate differences, docs §4.3):
--   policies on realtime.messages, storage.buckets, storage.objects (supautils policy_grants):
--     postgres owns those tables here, and an event trigger refuses it every other owner's
--     statement on them (ALTER/DROP TABLE, COMMENT ...) with hosted's error;
--   adding its tables to supabase_realtime: postgres owns the publication (as on hosted);
--   pg_cron (a privileged extension supautils creates as supabase_admin): created here, in the
--     cron database, with the grants of hosted's pg_cron after-create script.
-- ---------------------------------------------------------------------------------------------
grant usage on schema storage, realtime to postgres with grant option;
grant all on storage.buckets, storage.objects to postgres with grant option;
grant pg_monitor, pg_read_all_data, pg_signal_backend to postgres;
grant execute on function pg_catalog.pg_reload_conf() to postgres;
do $$
begin
  if current_setting('server_version_num')::int >= 160000 then
    grant anon, authenticated, service_role to postgres with admin option;
  end if;
end
$$;
alter table realtime.messages owner to postgres;
alter table storage.buckets owner to postgres;
alter table storage.objects owner to postgres;
alter publication supabase_realtime owner to postgres;

-- Ownership lets postgres do more than supautils' policy_grants: refuse the rest as hosted does
-- (PostgreSQL's own "must be owner of table ..." with SQLSTATE 42501). Allowed: CREATE/ALTER/DROP
-- POLICY, and CREATE/DROP TRIGGER (hosted: TRIGGER privilege, supautils drop_trigger_grants).
create or replace function extensions.devstack_policy_grants_guard() returns event_trigger
language plpgsql
set search_path = ''
as $$
declare
  guarded oid[];
  obj record;
  rel oid;
begin
  if (select rolsuper from pg_catalog.pg_roles where rolname = current_user) then
    return;
  end if;
  if tg_event = 'sql_drop' then
    -- Nothing in these schemas belongs to a non-superuser but the guarded tables (the schemas
    -- refuse it CREATE): what it drops there is one of them or a part of one.
    for obj in select * from pg_catalog.pg_event_trigger_dropped_objects() loop
      if obj.schema_name in ('realtime', 'storage') and obj.object_type not in ('policy', 'trigger') then
        raise exception 'must be owner of % %', obj.object_type, coalesce(obj.object_name, obj.object_identity)
          using errcode = '42501';
      end if;
    end loop;
    return;
  end if;
  -- Read here, not when declared: in sql_drop one of them may be gone already.
  guarded := array[to_regclass('realtime.messages'), to_regclass('storage.buckets'), to_regclass('storage.objects')];
  for obj in select * from pg_catalog.pg_event_trigger_ddl_commands() loop
    rel := case obj.classid
      when 'pg_catalog.pg_class'::regclass then
        coalesce((select i.indrelid from pg_catalog.pg_index i where i.indexrelid = obj.objid), obj.objid)
      when 'pg_catalog.pg_rewrite'::regclass then
        (select r.ev_class from pg_catalog.pg_rewrite r where r.oid = obj.objid)
      when 'pg_catalog.pg_statistic_ext'::regclass then
        (select s.stxrelid from pg_catalog.pg_statistic_ext s where s.oid = obj.objid)
    end;
    if rel = any(guarded) then
      raise exception 'must be owner of table %', (select c.relname from pg_catalog.pg_class c where c.oid = rel)
        using errcode = '42501';
    end if;
  end loop;
end
$$;
revoke all on function extensions.devstack_policy_grants_guard() from public;
drop event trigger if exists devstack_policy_grants_guard;
create event trigger devstack_policy_grants_guard on ddl_command_end
  execute function extensions.devstack_policy_grants_guard();
drop event trigger if exists devstack_policy_grants_guard_drop;
create event trigger devstack_policy_grants_guard_drop on sql_drop
  execute function extensions.devstack_policy_grants_guard();

do $$
begin
  if current_database() = coalesce(current_setting('cron.database_name', true), '')
     and exists (select 1 from pg_available_extensions where name = 'pg_cron') then
    create extension if not exists pg_cron;
    -- supabase/postgres ansible/files/postgresql_extension_custom_scripts/pg_cron/after-create.sql
    -- and 20260730000000: scheduling only through cron.schedule & co (cron.job is read-only).
    grant usage on schema cron to postgres with grant option;
    grant all on all functions in schema cron to postgres with grant option;
    grant all privileges on all tables in schema cron to postgres with grant option;
    revoke all on table cron.job from postgres;
    grant select on table cron.job to postgres with grant option;
    revoke trigger on cron.job_run_details from postgres;
  end if;
end
$$;
do $$
begin
  alter role postgres nosuperuser createdb createrole replication bypassrls login;
exception when others then
  -- PostgreSQL 16+ refuses to demote the bootstrap superuser (an old devstack cluster made with
  -- postgres): say so, go on.
  raise notice 'postgres stays a superuser on this cluster (%); delete the cluster''s data folder under .devstack to start afresh', sqlerrm;
end
$$;

-- ---------------------------------------------------------------------------------------------
-- Realtime stand-in helpers (devstack only; the gateway's postgres_changes delivery calls them).
-- devstack_cast turns a wal2json value (text) into the JSON the hosted server emits
-- (to_jsonb of the value cast to its column type); devstack_filter_matches evaluates one
-- `col=[not.]op.value` filter the way hosted Realtime does: both sides cast to the column type.
-- Operators come from a fixed list; values are only ever quoted literals (%L).
-- ---------------------------------------------------------------------------------------------
create or replace function realtime.devstack_cast(val text, type_ regtype)
returns jsonb
language plpgsql stable
as $$
declare
  res jsonb;
begin
  if val is null then
    return null;
  end if;
  execute format('select to_jsonb(%L::%s)', val, type_) into res;
  return res;
end
$$;

create or replace function realtime.devstack_filter_matches(
  op text, type_ regtype, column_value text, filter_value text, negate boolean default false, strict boolean default false
) returns boolean
language plpgsql stable
as $$
declare
  sym text := case op
    when 'eq' then '=' when 'neq' then '<>' when 'lt' then '<' when 'lte' then '<='
    when 'gt' then '>' when 'gte' then '>=' when 'isdistinct' then 'is distinct from'
    when 'like' then 'like' when 'ilike' then 'ilike' when 'match' then '~' when 'imatch' then '~*'
  end;
  res boolean;
begin
  begin
    if op = 'in' then
      execute format('select %L::%s = any(%L::%s[])', column_value, type_, filter_value, type_) into res;
    elsif op = 'is' then
      execute format('select %L::%s is %s', column_value, type_,
        case filter_value when 'null' then 'null' when 'true' then 'true' when 'false' then 'false' else 'unknown' end)
        into res;
    elsif op in ('like', 'ilike', 'match', 'imatch') then
      execute format('select %L::%s::text %s %L', column_value, type_, sym, filter_value) into res;
    elsif sym is not null then
      execute format('select %L::%s %s %L::%s', column_value, type_, sym, filter_value, type_) into res;
    else
      raise exception 'unsupported filter operator %', op;
    end if;
  exception when others then
    if strict then
      raise;
    end if;
    return false;
  end;
  if negate then
    res := not res;
  end if;
  return coalesce(res, false);
end
$$;

-- Which subscribers may see a row: for each {role, claims} in `subscribers`, run
-- `select exists(select 1 from <entity> where <pk> = <value> ...)` as that role with its JWT
-- claims (hosted apply_rls does the same per change). A failing policy counts as not visible.
-- `change_xid` is the change's transaction (wal2json's 32-bit id): the walsender sends a commit
-- as soon as its WAL is flushed, a moment before the committing backend leaves the proc array,
-- and until then the row is invisible to new snapshots. Hosted polls the slot and the moment has
-- passed; the stand-in streams, so it waits (bounded) for the transaction to end first.
drop function if exists realtime.devstack_rows_visible(regclass, jsonb, jsonb);
create or replace function realtime.devstack_rows_visible(entity regclass, pk jsonb, subscribers jsonb, change_xid bigint)
returns jsonb
language plpgsql volatile
as $$
declare
  check_sql text;
  sub jsonb;
  visible boolean;
  result jsonb := '[]'::jsonb;
  horizon bigint;
  offset_ bigint;
  deadline timestamptz := clock_timestamp() + interval '5 seconds';
begin
  if change_xid is not null and change_xid > 0 then
    -- The 64-bit id: the one nearest a current snapshot's horizon with these low 32 bits (running
    -- transactions may be on either side of it; the wrap-around rule keeps them within 2^31).
    horizon := pg_snapshot_xmax(pg_current_snapshot())::text::bigint;
    offset_ := (change_xid - horizon) & 4294967295;
    if offset_ >= 2147483648 then
      offset_ := offset_ - 4294967296;
    end if;
    while pg_xact_status((horizon + offset_)::text::xid8) = 'in progress'
          and clock_timestamp() < deadline loop
      perform pg_sleep(0.0002);
    end loop;
  end if;
  select format('select exists(select 1 from %s where %s)', entity,
                string_agg(format('%I = %L', key, value), ' and '))
    into check_sql
    from jsonb_each_text(pk);
  for sub in select * from jsonb_array_elements(subscribers) loop
    -- Runs as the platform (superuser): switch only to the API roles, whatever the caller sent.
    if sub->>'role' is null or sub->>'role' not in ('anon', 'authenticated', 'service_role') then
      result := result || to_jsonb(false);
      continue;
    end if;
    begin
      perform set_config('role', sub->>'role', true),
              set_config('request.jwt.claims', sub->>'claims', true),
              set_config('request.jwt.claim.sub', coalesce(sub->>'sub', ''), true),
              set_config('request.jwt.claim.role', sub->>'role', true);
      execute check_sql into visible;
      perform set_config('role', null, true);
    exception when others then
      visible := false;
    end;
    result := result || to_jsonb(coalesce(visible, false));
  end loop;
  return result;
end
$$;

revoke all on function realtime.devstack_cast(text, regtype) from public;
revoke all on function realtime.devstack_rows_visible(regclass, jsonb, jsonb, bigint) from public;
revoke all on function realtime.devstack_filter_matches(text, regtype, text, text, boolean, boolean) from public;
