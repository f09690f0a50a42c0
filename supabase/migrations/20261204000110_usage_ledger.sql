-- The usage ledger and budgets: list prices per model (public.model_prices), one ledger row per
-- model call (public.usage_ledger, written by the worker through record_usage), and the budget
-- check enqueue_job makes (private.check_budget).
--
-- New SQLSTATE: PT402 -> HTTP 402 (PostgREST answers SQLSTATE PTxyz with status xyz): the user's
-- plan budget for this month is spent. The message gives spent, budget and the reset time.
--
-- Budgets hold under concurrent enqueues: a user's enqueues that check a budget are serialized
-- (advisory lock per user), and each job that is queued, waiting or running reserves its kind's
-- estimated cost (job_kinds.estimated_cost_usd) minus what it has already spent. A job is admitted
-- only while spent + reserved < budget, so at most one job's estimate can go past the budget.
-- A job already running is never stopped by the budget: record_usage always records.

alter table public.job_kinds
  add column estimated_cost_usd numeric(12, 6) not null default 0
    constraint job_kinds_estimated_cost check (estimated_cost_usd between 0 and 1000);

comment on column public.job_kinds.estimated_cost_usd is
  'What one job of this kind is expected to cost (USD); reserved against the budget while the job is unfinished.';

-- From the prices below and the stand-ins' typical token counts (see README "Plans, prices and budgets").
update public.job_kinds set estimated_cost_usd = case kind
    when 'generate_design' then 0.02
    when 'rename_layers' then 0.01
    when 'generate_edits' then 0.01
    when 'generate_image' then 0.04
    else estimated_cost_usd end;

-- ---------------------------------------------------------------------------------------------
-- model_prices: published list prices, USD per million tokens (and per image where a provider
-- bills images by the image rather than by output tokens).
-- ---------------------------------------------------------------------------------------------
create table public.model_prices (
  provider text not null constraint model_prices_provider check (provider ~ '^[a-z][a-z0-9_-]{0,62}$'),
  model text not null constraint model_prices_model check (length(model) between 1 and 200),
  input_usd_per_mtok numeric(12, 4) not null constraint model_prices_input check (input_usd_per_mtok >= 0),
  cached_input_usd_per_mtok numeric(12, 4) not null constraint model_prices_cached check (cached_input_usd_per_mtok >= 0),
  output_usd_per_mtok numeric(12, 4) not null constraint model_prices_output check (output_usd_per_mtok >= 0),
  usd_per_image numeric(12, 6) not null default 0 constraint model_prices_image check (usd_per_image >= 0),
  source text not null,
  checked_on date not null,
  primary key (provider, model)
);

comment on table public.model_prices is 'List prices per provider/model (USD per million tokens; per image where billed so), with source and date.';

-- Sources, read 2026-12-04:
--   Anthropic, https://platform.claude.com/docs/en/about-claude/pricing ("Model pricing"): Claude
--   Haiku 4.5 $1 / MTok input, $5 / MTok output, cache hits $0.10 / MTok; Claude Sonnet 4.5 $3, $15,
--   cache hits $0.30. (Cache writes, 1.25x input, are billed here as plain input.)
--   Google, https://ai.google.dev/gemini-api/docs/pricing: Gemini 2.5 Flash Image $0.30 / MTok input,
--   image output $30 / MTok at 1290 tokens per image up to 1024x1024 ($0.039 an image). The image is
--   in the response's output token count, so usd_per_image is 0 (not billed twice).
insert into public.model_prices
  (provider, model, input_usd_per_mtok, cached_input_usd_per_mtok, output_usd_per_mtok, usd_per_image, source, checked_on)
values
  ('anthropic', 'claude-haiku-4-5', 1.00, 0.10, 5.00, 0, 'https://platform.claude.com/docs/en/about-claude/pricing', '2026-12-04'),
  ('anthropic', 'claude-sonnet-4-5', 3.00, 0.30, 15.00, 0, 'https://platform.claude.com/docs/en/about-claude/pricing', '2026-12-04'),
  ('gemini', 'gemini-2.5-flash-image', 0.30, 0.03, 30.00, 0, 'https://ai.google.dev/gemini-api/docs/pricing', '2026-12-04')
on conflict (provider, model) do nothing;

-- ---------------------------------------------------------------------------------------------
-- usage_ledger: one row per model call. Kept when retention deletes the job (job_id becomes
-- null): spend is history.
-- ---------------------------------------------------------------------------------------------
create table public.usage_ledger (
  id bigint generated always as identity primary key,
  created_at timestamptz not null default now(),
  job_id uuid references public.jobs (id) on delete set null,
  user_id uuid not null references auth.users (id) on delete cascade,
  kind text not null references public.job_kinds (kind),
  attempt integer not null constraint usage_ledger_attempt check (attempt between 1 and 100),
  worker_id text not null,
  provider text not null,
  model text not null,
  -- input_tokens counts every prompt token, cached_tokens those of them read from a cache.
  input_tokens integer not null constraint usage_ledger_input check (input_tokens >= 0),
  output_tokens integer not null constraint usage_ledger_output check (output_tokens >= 0),
  cached_tokens integer not null default 0
    constraint usage_ledger_cached check (cached_tokens >= 0 and cached_tokens <= input_tokens),
  images integer not null default 0 constraint usage_ledger_images check (images >= 0),
  latency_ms integer constraint usage_ledger_latency check (latency_ms >= 0),
  -- null: no price for this provider/model when the call was recorded.
  cost_usd numeric(14, 8) constraint usage_ledger_cost check (cost_usd >= 0)
);

comment on table public.usage_ledger is 'One row per model call (record_usage): tokens, images, latency and the cost at list price.';

create index usage_ledger_user_created on public.usage_ledger (user_id, created_at);

create index usage_ledger_job on public.usage_ledger (job_id);

create index usage_ledger_kind_created on public.usage_ledger (kind, created_at);

alter table public.model_prices enable row level security;

alter table public.usage_ledger enable row level security;

revoke all on table public.model_prices, public.usage_ledger from anon, authenticated;

revoke all on sequence public.usage_ledger_id_seq from anon, authenticated;

grant select on table public.model_prices, public.usage_ledger to authenticated;

grant all on table public.model_prices, public.usage_ledger to service_role;

create policy "signed-in users read model prices"
  on public.model_prices for select to authenticated
  using (true);

create policy "users read their own usage"
  on public.usage_ledger for select to authenticated
  using (user_id = (select auth.uid()));

-- ---------------------------------------------------------------------------------------------
-- Budget period and state
-- ---------------------------------------------------------------------------------------------
-- The budget period: the calendar month in UTC.
create function private.budget_period_start(at_time timestamptz) returns timestamptz
language plpgsql immutable
set search_path = ''
as $$
begin
  return date_trunc('month', at_time, 'UTC');
end;
$$;

-- What each user has spent per budget period, kept by the ledger's own statement triggers, so
-- the budget check at every enqueue reads one row instead of summing the period's ledger (which
-- grew with the user's model calls this month, read under the user's budget lock: bench/FIXES.md,
-- "a month of usage at every enqueue"). The ledger stays the record; tests compare the two after
-- inserts, updates, deletes and truncation. No policy: only the definer functions read it.
create table private.budget_spend (
  user_id uuid not null,
  period_start timestamptz not null,
  spent_usd numeric not null,
  primary key (user_id, period_start)
);

alter table private.budget_spend enable row level security;

create function private.keep_budget_spend() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_users uuid[];
  v_periods timestamptz[];
  v_amounts numeric[];
begin
  if tg_op = 'TRUNCATE' then
    delete from private.budget_spend;
    return null;
  end if;
  -- The statement's amounts: new rows add theirs, old rows (an update's or a delete's) take
  -- theirs back out. A transition table exists only for the events that have it.
  if tg_op = 'INSERT' then
    select array_agg(n.user_id), array_agg(private.budget_period_start(n.created_at)), array_agg(n.cost_usd)
    into v_users, v_periods, v_amounts from new_rows n where n.cost_usd is not null;
  elsif tg_op = 'DELETE' then
    select array_agg(o.user_id), array_agg(private.budget_period_start(o.created_at)), array_agg(-o.cost_usd)
    into v_users, v_periods, v_amounts from old_rows o where o.cost_usd is not null;
  else
    select array_agg(d.user_id), array_agg(d.period_start), array_agg(d.amount)
    into v_users, v_periods, v_amounts
    from (
      select n.user_id, private.budget_period_start(n.created_at) as period_start, n.cost_usd as amount
      from new_rows n where n.cost_usd is not null
      union all
      select o.user_id, private.budget_period_start(o.created_at), -o.cost_usd
      from old_rows o where o.cost_usd is not null
    ) d;
  end if;
  -- One upsert per (user, period) whose spend changed, in key order, so concurrent statements lock
  -- these rows in the same order (an update that moves no cost, such as retention setting job_id
  -- to null on every call of a purged job, locks nothing); a period whose calls are all gone (say
  -- its user was deleted) leaves no row.
  insert into private.budget_spend as s (user_id, period_start, spent_usd)
  select d.user_id, d.period_start, sum(d.amount)
  from unnest(v_users, v_periods, v_amounts) as d(user_id, period_start, amount)
  group by 1, 2 having sum(d.amount) <> 0 order by 1, 2
  on conflict (user_id, period_start) do update set spent_usd = s.spent_usd + excluded.spent_usd;
  if tg_op <> 'INSERT' then
    delete from private.budget_spend b
    where b.spent_usd = 0 and b.user_id = any(v_users);
  end if;
  return null;
end;
$$;

create trigger usage_ledger_spend_insert after insert on public.usage_ledger
  referencing new table as new_rows for each statement execute function private.keep_budget_spend();

create trigger usage_ledger_spend_update after update on public.usage_ledger
  referencing old table as old_rows new table as new_rows for each statement execute function private.keep_budget_spend();

create trigger usage_ledger_spend_delete after delete on public.usage_ledger
  referencing old table as old_rows for each statement execute function private.keep_budget_spend();

create trigger usage_ledger_spend_truncate after truncate on public.usage_ledger
  for each statement execute function private.keep_budget_spend();

-- What a user has spent this period, and what their unfinished jobs still reserve. Only kinds
-- with an estimate are looked at, each through the per-(user, kind) indexes, so a user with many
-- queued jobs of a free kind (estimate 0) costs nothing here. plpgsql, not sql: planned once per
-- session instead of on every enqueue (~400 µs of planning each time).
create function private.budget_use(p_user uuid, out spent_usd numeric, out reserved_usd numeric, out unfinished integer)
language plpgsql stable
set search_path = ''
set plan_cache_mode = force_generic_plan  -- as claim_jobs': its custom plan was made on every call (~160 µs)
as $$
begin
  select
    coalesce((select b.spent_usd from private.budget_spend b
              where b.user_id = p_user and b.period_start = private.budget_period_start(now())), 0),
    coalesce(sum(greatest(0, k.estimated_cost_usd - coalesce(c.spent, 0))), 0),
    count(j.id)::integer
  into spent_usd, reserved_usd, unfinished
  from public.job_kinds k
  cross join lateral (
    select q.id from public.jobs q where q.user_id = p_user and q.kind = k.kind and q.status = 'queued'
    union all
    select r.id from public.jobs r where r.user_id = p_user and r.kind = k.kind and r.status = 'running'
    union all
    select w.id from public.jobs w where w.user_id = p_user and w.kind = k.kind and w.status = 'waiting'
  ) j
  left join lateral (select sum(u.cost_usd) as spent from public.usage_ledger u where u.job_id = j.id) c on true
  where k.estimated_cost_usd > 0;
end;
$$;

-- Refuses (PT402) a new job when the user's plan budget for this month is spent, or would be by
-- the jobs already admitted. Serialized per user, so concurrent enqueues cannot all slip through.
create function private.check_budget(p_user uuid) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_plan public.plans := private.user_plan(p_user);
  v_use record;
  v_resets timestamptz := private.budget_period_start(now()) + interval '1 month';
begin
  if v_plan.monthly_budget_usd is null then
    return;
  end if;
  perform pg_advisory_xact_lock(7311, hashtext(p_user::text));  -- 7311: the budget lock class
  select * into v_use from private.budget_use(p_user);
  if v_use.spent_usd >= v_plan.monthly_budget_usd then
    raise exception 'budget: plan "%" allows % USD a month and % USD is spent; it resets at %',
      v_plan.plan, v_plan.monthly_budget_usd, round(v_use.spent_usd, 4), v_resets
      using errcode = 'PT402',
            detail = format('spent %s USD of %s USD', round(v_use.spent_usd, 4), v_plan.monthly_budget_usd),
            hint = format('resets at %s; jobs already running finish', v_resets);
  elsif v_use.spent_usd + v_use.reserved_usd >= v_plan.monthly_budget_usd then
    raise exception 'budget: plan "%" allows % USD a month; % USD is spent and your % unfinished jobs reserve % USD; it resets at %',
      v_plan.plan, v_plan.monthly_budget_usd, round(v_use.spent_usd, 4), v_use.unfinished, round(v_use.reserved_usd, 4), v_resets
      using errcode = 'PT402',
            detail = format('spent %s USD, reserved %s USD, of %s USD',
                            round(v_use.spent_usd, 4), round(v_use.reserved_usd, 4), v_plan.monthly_budget_usd),
            hint = format('wait for your unfinished jobs, or until %s', v_resets);
  end if;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- record_usage (service role): one model call of a job's attempt, priced at list price.
-- ---------------------------------------------------------------------------------------------
create function private.check_count(field text, value integer, max_value integer) returns void
language plpgsql
set search_path = ''
as $$
begin
  if value is null or value not between 0 and max_value then
    perform private.raise_invalid(field, format('must be between 0 and %s, got %s', max_value, coalesce(value::text, 'null')));
  end if;
end;
$$;

-- A model call's list price: record_usage and record_usage_items' one-statement path price with
-- this one formula. A null price (no row for the model): a null cost. plpgsql, not sql: a sql
-- function with its own search_path is not inlined, and runs as a query of its own per call.
create function private.usage_cost(
  price public.model_prices, input_tokens integer, cached_tokens integer, output_tokens integer, images integer
) returns numeric
language plpgsql
stable
set search_path = ''
as $$
begin
  return ((input_tokens - cached_tokens) * price.input_usd_per_mtok
          + cached_tokens * price.cached_input_usd_per_mtok
          + output_tokens * price.output_usd_per_mtok) / 1000000
         + images * price.usd_per_image;
end;
$$;

create function public.record_usage(
  job_id uuid,
  worker_id text,
  attempt integer,
  provider text,
  model text,
  input_tokens integer default 0,
  output_tokens integer default 0,
  cached_tokens integer default 0,
  images integer default 0,
  latency_ms integer default null
) returns public.usage_ledger
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_job public.jobs;
  v_price public.model_prices;
  v_cost numeric;
  v_row public.usage_ledger;
begin
  perform private.check_worker_id(worker_id);
  if record_usage.job_id is null then
    perform private.raise_invalid('job_id', 'must not be null');
  end if;
  if record_usage.provider is null or record_usage.provider !~ '^[a-z][a-z0-9_-]{0,62}$' then
    perform private.raise_invalid('provider',
      format('must be 1 to 63 lowercase letters, digits, _ or -, got %s', coalesce('"' || private.excerpt(record_usage.provider, 80) || '"', 'null')));
  end if;
  if record_usage.model is null or length(record_usage.model) not between 1 and 200 or record_usage.model ~ '\s' then
    perform private.raise_invalid('model',
      format('must be 1 to 200 characters without spaces, got %s', coalesce('"' || private.excerpt(record_usage.model, 80) || '"', 'null')));
  end if;
  perform private.check_count('input_tokens', record_usage.input_tokens, 100000000);
  perform private.check_count('output_tokens', record_usage.output_tokens, 100000000);
  perform private.check_count('cached_tokens', record_usage.cached_tokens, 100000000);
  if record_usage.cached_tokens > record_usage.input_tokens then
    perform private.raise_invalid('cached_tokens',
      format('must not exceed input_tokens (%s), got %s', record_usage.input_tokens, record_usage.cached_tokens),
      'input_tokens counts every prompt token, cached ones included');
  end if;
  perform private.check_count('images', record_usage.images, 1000);
  if record_usage.latency_ms is not null then
    perform private.check_count('latency_ms', record_usage.latency_ms, 86400000);
  end if;

  select * into v_job from public.jobs j where j.id = record_usage.job_id;
  if not found then
    raise exception 'record_usage: job % not found', record_usage.job_id using errcode = 'PT404';
  end if;
  if record_usage.attempt is null or record_usage.attempt not between 1 and greatest(v_job.attempts, 1) then
    perform private.raise_invalid('attempt',
      format('must be between 1 and the job''s attempts (%s), got %s', v_job.attempts, coalesce(record_usage.attempt::text, 'null')));
  end if;

  select * into v_price from public.model_prices p
  where p.provider = record_usage.provider and p.model = record_usage.model;
  if found then
    v_cost := private.usage_cost(v_price, record_usage.input_tokens, record_usage.cached_tokens,
                                 record_usage.output_tokens, record_usage.images);
  end if;

  insert into public.usage_ledger as u
    (job_id, user_id, kind, attempt, worker_id, provider, model, input_tokens, output_tokens, cached_tokens,
     images, latency_ms, cost_usd)
  values
    (v_job.id, v_job.user_id, v_job.kind, record_usage.attempt, record_usage.worker_id, record_usage.provider,
     record_usage.model, record_usage.input_tokens, record_usage.output_tokens, record_usage.cached_tokens,
     record_usage.images, record_usage.latency_ms, v_cost)
  returning u.* into v_row;
  return v_row;
end;
$$;

comment on function public.record_usage(uuid, text, integer, text, text, integer, integer, integer, integer, integer) is
  'Worker: record one model call of a job (tokens, cached tokens, images, latency), priced from model_prices (cost null if unpriced).';
