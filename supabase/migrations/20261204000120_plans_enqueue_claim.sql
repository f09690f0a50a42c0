-- Plans in enqueue_job and claim_jobs (defined once, in 20261123000300_jobs_enqueue.sql and
-- 20261123000400_jobs_claiming.sql, which call these helpers and those of 20261204000100_plans.sql
-- and 20261204000110_usage_ledger.sql; plpgsql resolves them when called):
--   enqueue_job: the kind's limits come from the user's plan (private.kind_on_plan): its priority
--     is the default and the ceiling (private.check_plan_priority, 400 naming `priority` and the
--     plan), its rate limit applies; then the budget (private.check_budget, PT402), after the
--     idempotency lookup so a retried submission still returns its job.
--   claim_jobs: the per-user running cap is the plan's (private.running_cap).

-- A user's running cap for a kind under their plan.
create function private.running_cap(p_user uuid, p_kind text) returns integer
language plpgsql stable
set search_path = ''
as $$
begin
  return (select (private.kind_on_plan(p_user, k)).max_running_per_user from public.job_kinds k where k.kind = p_kind);
end;
$$;

