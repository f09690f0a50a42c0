-- Plans and entitlements: public.plans (one marked default), per-kind limits of a plan
-- (public.plan_kind_limits), and which plan each user is on (public.user_plans; no row = the
-- default plan). Only the service role writes them (e.g. from a billing webhook, through
-- set_plan / set_plan_kind_limits / set_user_plan); users read the plans and their own row.
--
-- A limit a plan leaves null is the kind's own (public.job_kinds): the default plan "free"
-- overrides nothing, so today's job_kinds limits are its limits.
--
-- New SQLSTATE (see 20261204000110_usage_ledger.sql): PT402 -> 402, the plan's budget is spent.

create table public.plans (
  plan text primary key constraint plans_plan_name check (plan ~ '^[a-z][a-z0-9_]{0,62}$'),
  description text not null default '' constraint plans_description_length check (length(description) <= 500),
  is_default boolean not null default false,
  -- USD per calendar month (UTC); null means no budget.
  monthly_budget_usd numeric(12, 2)
    constraint plans_budget_range check (monthly_budget_usd is null or monthly_budget_usd between 0 and 1000000),
  updated_at timestamptz not null default now()
);

comment on table public.plans is 'Plans: monthly budget in USD (null = none); per-kind limits in plan_kind_limits. Written by the service role only.';

-- At most one default plan.
create unique index plans_one_default on public.plans (is_default) where is_default;

create table public.plan_kind_limits (
  plan text not null references public.plans (plan) on delete cascade,
  kind text not null references public.job_kinds (kind) on delete cascade,
  -- The priority the plan's jobs of this kind get, and the most a caller may ask for.
  priority integer constraint plan_kind_limits_priority check (priority between -100 and 100),
  rate_limit_per_minute integer constraint plan_kind_limits_rate check (rate_limit_per_minute between 1 and 100000),
  max_running_per_user integer constraint plan_kind_limits_running check (max_running_per_user between 1 and 100000),
  primary key (plan, kind)
);

comment on table public.plan_kind_limits is 'Per-kind limits of a plan; a null column means the kind''s own limit (job_kinds).';

create table public.user_plans (
  user_id uuid primary key references auth.users (id) on delete cascade,
  plan text not null references public.plans (plan),
  updated_at timestamptz not null default now()
);

comment on table public.user_plans is 'The plan of each user; a user without a row is on the default plan. Written by the service role only (set_user_plan).';

insert into public.plans (plan, description, is_default, monthly_budget_usd) values
  ('free', 'Default plan: the job_kinds limits, 5 USD of model calls a month', true, 5.00),
  ('pro', 'Paid plan: priority 50, 5x the rate limits, 3x the running caps, 100 USD a month', false, 100.00)
on conflict (plan) do nothing;

insert into public.plan_kind_limits (plan, kind, priority, rate_limit_per_minute, max_running_per_user)
select 'pro', k.kind, 50, least(100000, k.rate_limit_per_minute * 5), least(100000, k.max_running_per_user * 3)
from public.job_kinds k
on conflict (plan, kind) do nothing;

alter table public.plans enable row level security;

alter table public.plan_kind_limits enable row level security;

alter table public.user_plans enable row level security;

revoke all on table public.plans, public.plan_kind_limits, public.user_plans from anon, authenticated;

grant select on table public.plans, public.plan_kind_limits, public.user_plans to authenticated;

grant all on table public.plans, public.plan_kind_limits, public.user_plans to service_role;

create policy "signed-in users read plans"
  on public.plans for select to authenticated
  using (true);

create policy "signed-in users read plan limits"
  on public.plan_kind_limits for select to authenticated
  using (true);

create policy "users read their own plan"
  on public.user_plans for select to authenticated
  using (user_id = (select auth.uid()));

-- ---------------------------------------------------------------------------------------------
-- Effective limits: a kind's job_kinds row with the user's plan applied (default_priority,
-- rate_limit_per_minute, max_running_per_user), so enqueue_job and claim_jobs keep reading one row.
-- ---------------------------------------------------------------------------------------------
-- plpgsql, not sql: a sql function with `set search_path` is planned again on every call (up to
-- PostgreSQL 17), ~100 µs here, and enqueue_job and every claimed group call this one.
create function private.user_plan(p_user uuid) returns public.plans
language plpgsql stable
set search_path = ''
as $$
declare
  v_plan public.plans;
begin
  select p.* into v_plan from public.plans p
  where p.plan = coalesce((select up.plan from public.user_plans up where up.user_id = p_user),
                          (select d.plan from public.plans d where d.is_default));
  return v_plan;
end;
$$;

create function private.kind_on_plan(p_user uuid, p_kind public.job_kinds) returns public.job_kinds
language plpgsql stable
set search_path = ''
as $$
declare
  v_kind public.job_kinds := p_kind;
  v_limits public.plan_kind_limits;
begin
  select l.* into v_limits from public.plan_kind_limits l
  where l.plan = (private.user_plan(p_user)).plan and l.kind = p_kind.kind;
  v_kind.default_priority := coalesce(v_limits.priority, p_kind.default_priority);
  v_kind.rate_limit_per_minute := coalesce(v_limits.rate_limit_per_minute, p_kind.rate_limit_per_minute);
  v_kind.max_running_per_user := coalesce(v_limits.max_running_per_user, p_kind.max_running_per_user);
  return v_kind;
end;
$$;

-- A caller may lower its plan's priority, never raise it. `kind_on_plan` is the kind with the
-- plan applied; the -100..100 range is checked before this.
create function private.check_plan_priority(p_user uuid, kind_on_plan public.job_kinds, requested integer)
returns void
language plpgsql stable
set search_path = ''
as $$
begin
  if requested is not null and requested > kind_on_plan.default_priority then
    perform private.raise_invalid('priority',
      format('must be at most %s for kind "%s" on plan "%s", got %s',
             kind_on_plan.default_priority, kind_on_plan.kind, coalesce((private.user_plan(p_user)).plan, 'none'), requested),
      'a caller may only lower its plan''s priority; a higher one comes with another plan');
  end if;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Operator calls (service role): define a plan, its per-kind limits, and move a user to a plan.
-- ---------------------------------------------------------------------------------------------
create function private.check_plan_name(field text, plan text, must_exist boolean) returns void
language plpgsql stable
set search_path = ''
as $$
begin
  if plan is null then
    perform private.raise_invalid(field, 'must not be null');
  elsif plan !~ '^[a-z][a-z0-9_]{0,62}$' then
    perform private.raise_invalid(field,
      format('must be 1 to 63 lowercase letters, digits or _, starting with a letter, got "%s"', private.excerpt(plan, 80)));
  elsif must_exist and not exists (select 1 from public.plans p where p.plan = check_plan_name.plan) then
    perform private.raise_invalid(field, format('unknown plan "%s"', plan),
      'known plans: ' || coalesce((select string_agg(p.plan, ', ' order by p.plan) from public.plans p), 'none'));
  end if;
end;
$$;

create function public.set_plan(
  plan text,
  monthly_budget_usd numeric,
  description text default null,
  is_default boolean default null
) returns public.plans
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_plan public.plans;
begin
  perform private.check_plan_name('plan', set_plan.plan, false);
  if set_plan.monthly_budget_usd is not null
     and (set_plan.monthly_budget_usd = 'NaN' or set_plan.monthly_budget_usd not between 0 and 1000000) then
    perform private.raise_invalid('monthly_budget_usd',
      format('must be between 0 and 1000000 USD (null for no budget), got %s', set_plan.monthly_budget_usd));
  end if;
  if length(set_plan.description) > 500 then
    perform private.raise_invalid('description', format('must be at most 500 characters, got %s', length(set_plan.description)));
  end if;
  if set_plan.is_default is false and exists (select 1 from public.plans p where p.plan = set_plan.plan and p.is_default) then
    perform private.raise_invalid('is_default', format('plan "%s" is the default; make another plan the default instead', set_plan.plan));
  end if;
  if set_plan.is_default then
    update public.plans p set is_default = false, updated_at = now() where p.is_default and p.plan <> set_plan.plan;
  end if;
  insert into public.plans as p (plan, monthly_budget_usd, description, is_default)
  values (set_plan.plan, round(set_plan.monthly_budget_usd, 2), coalesce(set_plan.description, ''), coalesce(set_plan.is_default, false))
  on conflict (plan) do update
    set monthly_budget_usd = excluded.monthly_budget_usd,
        description = coalesce(set_plan.description, p.description),
        is_default = coalesce(set_plan.is_default, p.is_default),
        updated_at = now()
  returning p.* into v_plan;
  return v_plan;
end;
$$;

comment on function public.set_plan(text, numeric, text, boolean) is
  'Operators: create or update a plan (monthly budget in USD, null = none; is_default moves the default).';

create function public.set_plan_kind_limits(
  plan text,
  kind text,
  priority integer default null,
  rate_limit_per_minute integer default null,
  max_running_per_user integer default null
) returns public.plan_kind_limits
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_row public.plan_kind_limits;
begin
  perform private.check_plan_name('plan', set_plan_kind_limits.plan, true);
  if set_plan_kind_limits.kind is null then
    perform private.raise_invalid('kind', 'must not be null');
  end if;
  perform private.check_kinds('kind', array[set_plan_kind_limits.kind]);
  if set_plan_kind_limits.priority not between -100 and 100 then
    perform private.raise_invalid('priority', format('must be between -100 and 100, got %s', set_plan_kind_limits.priority));
  end if;
  if set_plan_kind_limits.rate_limit_per_minute not between 1 and 100000 then
    perform private.raise_invalid('rate_limit_per_minute',
      format('must be between 1 and 100000, got %s', set_plan_kind_limits.rate_limit_per_minute));
  end if;
  if set_plan_kind_limits.max_running_per_user not between 1 and 100000 then
    perform private.raise_invalid('max_running_per_user',
      format('must be between 1 and 100000, got %s', set_plan_kind_limits.max_running_per_user));
  end if;
  insert into public.plan_kind_limits as l (plan, kind, priority, rate_limit_per_minute, max_running_per_user)
  values (set_plan_kind_limits.plan, set_plan_kind_limits.kind, set_plan_kind_limits.priority,
          set_plan_kind_limits.rate_limit_per_minute, set_plan_kind_limits.max_running_per_user)
  on conflict (plan, kind) do update
    set priority = excluded.priority,
        rate_limit_per_minute = excluded.rate_limit_per_minute,
        max_running_per_user = excluded.max_running_per_user
  returning l.* into v_row;
  return v_row;
end;
$$;

comment on function public.set_plan_kind_limits(text, text, integer, integer, integer) is
  'Operators: a plan''s limits for one kind (priority, rate per minute, running cap); null keeps the kind''s own.';

create function public.set_user_plan(user_id uuid, plan text) returns public.user_plans
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_row public.user_plans;
begin
  if set_user_plan.user_id is null then
    perform private.raise_invalid('user_id', 'must not be null');
  end if;
  perform private.check_plan_name('plan', set_user_plan.plan, true);
  if not exists (select 1 from auth.users u where u.id = set_user_plan.user_id) then
    perform private.raise_invalid('user_id', format('no user %s', set_user_plan.user_id));
  end if;
  insert into public.user_plans as up (user_id, plan) values (set_user_plan.user_id, set_user_plan.plan)
  on conflict (user_id) do update set plan = excluded.plan, updated_at = now()
  returning up.* into v_row;
  return v_row;
end;
$$;

comment on function public.set_user_plan(uuid, text) is
  'Operators: move a user to a plan (takes effect for their next enqueue and claim).';
