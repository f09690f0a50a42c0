-- Spend for the dashboard and for users (security invoker: the caller's RLS applies, so a user
-- sees only their own usage while the dashboard and the service role see everyone's), and who
-- may call the plan and usage functions. Read-only like the other views (20261123000800).

create view public.spend_by_user_month with (security_invoker = true) as
select
  u.user_id,
  (date_trunc('month', u.created_at, 'UTC') at time zone 'UTC')::date as month,
  count(*)::integer as calls,
  count(distinct u.job_id)::integer as jobs,
  round(coalesce(sum(u.cost_usd), 0), 6) as spent_usd,
  count(*) filter (where u.cost_usd is null)::integer as unpriced_calls
from public.usage_ledger u
group by u.user_id, date_trunc('month', u.created_at, 'UTC');

comment on view public.spend_by_user_month is 'Model spend (USD at list price) per user per calendar month (UTC).';

create view public.cost_per_kind with (security_invoker = true) as
select
  u.kind,
  count(distinct u.job_id)::integer as jobs,
  count(*)::integer as calls,
  round(coalesce(sum(u.cost_usd), 0), 6) as cost_usd,
  round(coalesce(sum(u.cost_usd), 0) * 1000 / nullif(count(distinct u.job_id), 0), 4) as cost_per_1k_jobs_usd
from public.usage_ledger u
where u.created_at > now() - interval '30 days'
group by u.kind;

comment on view public.cost_per_kind is 'Per kind over the last 30 days: jobs that called a model, calls, cost, and cost per 1,000 jobs.';

create view public.tokens_per_kind with (security_invoker = true) as
select
  u.kind, u.provider, u.model,
  count(*)::integer as calls,
  sum(u.input_tokens)::bigint as input_tokens,
  sum(u.cached_tokens)::bigint as cached_tokens,
  sum(u.output_tokens)::bigint as output_tokens,
  sum(u.images)::bigint as images,
  round(avg(u.latency_ms)::numeric, 1) as avg_latency_ms
from public.usage_ledger u
where u.created_at > now() - interval '30 days'
group by u.kind, u.provider, u.model;

comment on view public.tokens_per_kind is 'Per kind and model over the last 30 days: calls, tokens, images, mean latency.';

create view public.job_costs with (security_invoker = true) as
select
  u.job_id, u.user_id, u.kind,
  count(*)::integer as calls,
  sum(u.input_tokens)::bigint as input_tokens,
  sum(u.output_tokens)::bigint as output_tokens,
  sum(u.images)::bigint as images,
  round(coalesce(sum(u.cost_usd), 0), 6) as cost_usd,
  string_agg(distinct u.provider || '/' || u.model, ', ') as models
from public.usage_ledger u
where u.job_id is not null
group by u.job_id, u.user_id, u.kind;

comment on view public.job_costs is 'What each job cost: calls, tokens, images and USD over all its attempts.';

-- The signed-in user's plan and spend this month; no row without a signed-in user.
create view public.my_spend with (security_invoker = true) as
select
  me.user_id,
  p.plan,
  p.monthly_budget_usd as budget_usd,
  round(coalesce(s.spent, 0), 6) as spent_usd,
  round(coalesce(r.reserved, 0), 6) as reserved_usd,
  case when p.monthly_budget_usd is not null
       then round(greatest(0, p.monthly_budget_usd - coalesce(s.spent, 0)), 6) end as remaining_usd,
  coalesce(s.calls, 0) as calls,
  date_trunc('month', now(), 'UTC') as period_start,
  date_trunc('month', now(), 'UTC') + interval '1 month' as resets_at
from (select auth.uid() as user_id) me
left join public.user_plans up on up.user_id = me.user_id
join public.plans p on p.plan = coalesce(up.plan, (select d.plan from public.plans d where d.is_default))
left join lateral (
  select sum(u.cost_usd) as spent, count(*)::integer as calls from public.usage_ledger u
  where u.user_id = me.user_id and u.created_at >= date_trunc('month', now(), 'UTC')
) s on true
left join lateral (
  -- What the unfinished jobs still reserve (enqueue_job counts it against the budget).
  select sum(greatest(0, k.estimated_cost_usd - coalesce((select sum(u.cost_usd) from public.usage_ledger u where u.job_id = j.id), 0))) as reserved
  from public.jobs j join public.job_kinds k on k.kind = j.kind
  where j.user_id = me.user_id and j.status in ('queued', 'waiting', 'running')
) r on true
where me.user_id is not null;

comment on view public.my_spend is 'The signed-in user''s plan, budget, spend, reservations and what is left this month, and when it resets.';

revoke all on public.spend_by_user_month, public.cost_per_kind, public.tokens_per_kind, public.job_costs, public.my_spend
  from anon, authenticated;

grant select on public.spend_by_user_month, public.cost_per_kind, public.tokens_per_kind, public.job_costs, public.my_spend
  to authenticated, service_role;

create trigger read_only instead of insert or update or delete on public.spend_by_user_month
  for each row execute function private.refuse_view_write();

create trigger read_only instead of insert or update or delete on public.cost_per_kind
  for each row execute function private.refuse_view_write();

create trigger read_only instead of insert or update or delete on public.tokens_per_kind
  for each row execute function private.refuse_view_write();

create trigger read_only instead of insert or update or delete on public.job_costs
  for each row execute function private.refuse_view_write();

create trigger read_only instead of insert or update or delete on public.my_spend
  for each row execute function private.refuse_view_write();

-- Who may call what (as in 20261123001000_jobs_grants.sql): only the service role defines plans,
-- moves users between plans and records usage.
select private.grant_calls(array[
  'public.set_plan(text, numeric, text, boolean)',
  'public.set_plan_kind_limits(text, text, integer, integer, integer)',
  'public.set_user_plan(uuid, text)',
  'public.record_usage(uuid, text, integer, text, text, integer, integer, integer, integer, integer)'
], 'service_role');

revoke all on all functions in schema private from public, anon, authenticated;
