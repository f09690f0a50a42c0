-- The schema supabase/migrations adds up to, read from the catalog by devstack/schema_snapshot.py.
-- Generated: never edit it; change the SQL API with a new migration, then run
--   python -m devstack schema --write
-- tests/sql/test_schema_snapshot.py fails when this file and the migrations disagree.

-- schema private
postgres:CREATE, postgres:USAGE, service_role:USAGE

-- schema public
anon:USAGE, authenticated:USAGE, pg_database_owner:CREATE, pg_database_owner:USAGE, postgres:USAGE, service_role:USAGE

-- column private.budget_spend.period_start
timestamp with time zone not null

-- column private.budget_spend.spent_usd
numeric not null

-- column private.budget_spend.user_id
uuid not null

-- column public.active_jobs.attempts
integer

-- column public.active_jobs.cancel_requested
boolean

-- column public.active_jobs.id
uuid

-- column public.active_jobs.kind
text

-- column public.active_jobs.lease_expired
boolean

-- column public.active_jobs.lease_expires_at
timestamp with time zone

-- column public.active_jobs.max_attempts
integer

-- column public.active_jobs.message
text

-- column public.active_jobs.percent
text

-- column public.active_jobs.running_seconds
numeric

-- column public.active_jobs.started_at
timestamp with time zone

-- column public.active_jobs.user_id
uuid

-- column public.active_jobs.worker_id
text

-- column public.artifact_deletions.attempts
integer not null default 0

-- column public.artifact_deletions.bucket_id
text not null

-- column public.artifact_deletions.claimed_until
timestamp with time zone

-- column public.artifact_deletions.created_at
timestamp with time zone not null default now()

-- column public.artifact_deletions.id
bigint not null identity a

-- column public.artifact_deletions.job_id
uuid

-- column public.artifact_deletions.name
text not null

-- column public.artifact_deletions.reason
text not null

-- column public.cost_per_kind.calls
integer

-- column public.cost_per_kind.cost_per_1k_jobs_usd
numeric

-- column public.cost_per_kind.cost_usd
numeric

-- column public.cost_per_kind.jobs
integer

-- column public.cost_per_kind.kind
text

-- column public.job_costs.calls
integer

-- column public.job_costs.cost_usd
numeric

-- column public.job_costs.images
bigint

-- column public.job_costs.input_tokens
bigint

-- column public.job_costs.job_id
uuid

-- column public.job_costs.kind
text

-- column public.job_costs.models
text

-- column public.job_costs.output_tokens
bigint

-- column public.job_costs.user_id
uuid

-- column public.job_events.created_at
timestamp with time zone not null default now()

-- column public.job_events.data
jsonb not null default '{}'::jsonb

-- column public.job_events.id
bigint not null identity a

-- column public.job_events.job_id
uuid not null

-- column public.job_events.type
text not null

-- column public.job_events.user_id
uuid not null

-- column public.job_kinds.cache_scope
text not null default 'user'::text

-- column public.job_kinds.cache_ttl_seconds
integer

-- column public.job_kinds.default_priority
integer not null default 0

-- column public.job_kinds.description
text not null default ''::text

-- column public.job_kinds.estimated_cost_usd
numeric(12,6) not null default 0

-- column public.job_kinds.heavy
boolean not null default false

-- column public.job_kinds.kind
text not null

-- column public.job_kinds.max_attempts
integer not null default 3

-- column public.job_kinds.max_payload_bytes
integer not null default 65536

-- column public.job_kinds.max_running_per_user
integer not null default 2

-- column public.job_kinds.prompt_version
text not null default '1'::text

-- column public.job_kinds.rate_limit_per_minute
integer not null default 10

-- column public.job_kinds.timeout_seconds
integer not null default 300

-- column public.job_result_cache.cache_key
bytea not null

-- column public.job_result_cache.created_at
timestamp with time zone not null default now()

-- column public.job_result_cache.job_id
uuid not null

-- column public.job_result_cache.kind
text not null

-- column public.job_result_cache.user_id
uuid not null

-- column public.job_stats.attempts
integer

-- column public.job_stats.jobs
integer

-- column public.job_stats.kind
text

-- column public.job_stats.run_p50_seconds
numeric

-- column public.job_stats.run_p95_seconds
numeric

-- column public.job_stats.status
text

-- column public.job_stats.wait_p50_seconds
numeric

-- column public.job_stats.wait_p95_seconds
numeric

-- column public.jobs.attempts
integer not null default 0

-- column public.jobs.cached
boolean not null default false

-- column public.jobs.cached_from
uuid

-- column public.jobs.cancel_requested
boolean not null default false

-- column public.jobs.created_at
timestamp with time zone not null default now()

-- column public.jobs.depends_on
uuid

-- column public.jobs.error
jsonb

-- column public.jobs.finished_at
timestamp with time zone

-- column public.jobs.id
uuid not null default gen_random_uuid()

-- column public.jobs.idempotency_key
text

-- column public.jobs.kind
text not null

-- column public.jobs.lease_expires_at
timestamp with time zone

-- column public.jobs.max_attempts
integer not null

-- column public.jobs.payload
jsonb not null default '{}'::jsonb

-- column public.jobs.priority
integer not null default 0

-- column public.jobs.progress
jsonb not null default '{"message": null, "percent": 0}'::jsonb

-- column public.jobs.result
jsonb

-- column public.jobs.run_at
timestamp with time zone not null default now()

-- column public.jobs.started_at
timestamp with time zone

-- column public.jobs.status
text not null default 'queued'::text

-- column public.jobs.updated_at
timestamp with time zone not null default now()

-- column public.jobs.user_id
uuid not null default auth.uid()

-- column public.jobs.worker_id
text

-- column public.kind_models.kind
text not null

-- column public.kind_models.model
text not null

-- column public.kind_models.position
integer not null

-- column public.kind_models.provider
text not null

-- column public.model_capacity.cooldown_status
integer

-- column public.model_capacity.cooldown_until
timestamp with time zone

-- column public.model_capacity.cooldowns
integer not null default 0

-- column public.model_capacity.model
text not null

-- column public.model_capacity.provider
text not null

-- column public.model_capacity.refilled_at
timestamp with time zone not null default now()

-- column public.model_capacity.requests_left
double precision not null default 0

-- column public.model_capacity.tokens_left
double precision not null default 0

-- column public.model_prices.cached_input_usd_per_mtok
numeric(12,4) not null

-- column public.model_prices.checked_on
date not null

-- column public.model_prices.input_usd_per_mtok
numeric(12,4) not null

-- column public.model_prices.model
text not null

-- column public.model_prices.output_usd_per_mtok
numeric(12,4) not null

-- column public.model_prices.provider
text not null

-- column public.model_prices.source
text not null

-- column public.model_prices.usd_per_image
numeric(12,6) not null default 0

-- column public.my_spend.budget_usd
numeric(12,2)

-- column public.my_spend.calls
integer

-- column public.my_spend.period_start
timestamp with time zone

-- column public.my_spend.plan
text

-- column public.my_spend.remaining_usd
numeric

-- column public.my_spend.reserved_usd
numeric

-- column public.my_spend.resets_at
timestamp with time zone

-- column public.my_spend.spent_usd
numeric

-- column public.my_spend.user_id
uuid

-- column public.pending_jobs_queue.age_seconds
numeric

-- column public.pending_jobs_queue.attempts
integer

-- column public.pending_jobs_queue.depends_on
uuid

-- column public.pending_jobs_queue.id
uuid

-- column public.pending_jobs_queue.kind
text

-- column public.pending_jobs_queue.max_attempts
integer

-- column public.pending_jobs_queue.priority
integer

-- column public.pending_jobs_queue.queue_position
integer

-- column public.pending_jobs_queue.reason
text

-- column public.pending_jobs_queue.run_at
timestamp with time zone

-- column public.pending_jobs_queue.status
text

-- column public.pending_jobs_queue.user_id
uuid

-- column public.plan_kind_limits.kind
text not null

-- column public.plan_kind_limits.max_running_per_user
integer

-- column public.plan_kind_limits.plan
text not null

-- column public.plan_kind_limits.priority
integer

-- column public.plan_kind_limits.rate_limit_per_minute
integer

-- column public.plans.description
text not null default ''::text

-- column public.plans.is_default
boolean not null default false

-- column public.plans.monthly_budget_usd
numeric(12,2)

-- column public.plans.plan
text not null

-- column public.plans.updated_at
timestamp with time zone not null default now()

-- column public.provider_limits.model
text not null

-- column public.provider_limits.provider
text not null

-- column public.provider_limits.requests_per_minute
integer

-- column public.provider_limits.tokens_per_minute
integer

-- column public.spend_by_user_month.calls
integer

-- column public.spend_by_user_month.jobs
integer

-- column public.spend_by_user_month.month
date

-- column public.spend_by_user_month.spent_usd
numeric

-- column public.spend_by_user_month.unpriced_calls
integer

-- column public.spend_by_user_month.user_id
uuid

-- column public.tokens_per_kind.avg_latency_ms
numeric

-- column public.tokens_per_kind.cached_tokens
bigint

-- column public.tokens_per_kind.calls
integer

-- column public.tokens_per_kind.images
bigint

-- column public.tokens_per_kind.input_tokens
bigint

-- column public.tokens_per_kind.kind
text

-- column public.tokens_per_kind.model
text

-- column public.tokens_per_kind.output_tokens
bigint

-- column public.tokens_per_kind.provider
text

-- column public.usage_ledger.attempt
integer not null

-- column public.usage_ledger.cached_tokens
integer not null default 0

-- column public.usage_ledger.cost_usd
numeric(14,8)

-- column public.usage_ledger.created_at
timestamp with time zone not null default now()

-- column public.usage_ledger.id
bigint not null identity a

-- column public.usage_ledger.images
integer not null default 0

-- column public.usage_ledger.input_tokens
integer not null

-- column public.usage_ledger.job_id
uuid

-- column public.usage_ledger.kind
text not null

-- column public.usage_ledger.latency_ms
integer

-- column public.usage_ledger.model
text not null

-- column public.usage_ledger.output_tokens
integer not null

-- column public.usage_ledger.provider
text not null

-- column public.usage_ledger.user_id
uuid not null

-- column public.usage_ledger.worker_id
text not null

-- column public.user_plans.plan
text not null

-- column public.user_plans.updated_at
timestamp with time zone not null default now()

-- column public.user_plans.user_id
uuid not null

-- column public.worker_wakeups.free_slots
integer not null

-- column public.worker_wakeups.handed
uuid[] not null default '{}'::uuid[]

-- column public.worker_wakeups.handoff_lease_seconds
integer

-- column public.worker_wakeups.kinds
text[]

-- column public.worker_wakeups.parked_at
timestamp with time zone not null default now()

-- column public.worker_wakeups.parked_until
timestamp with time zone not null

-- column public.worker_wakeups.wake_via
text

-- column public.worker_wakeups.woken_at
timestamp with time zone

-- column public.worker_wakeups.worker_id
text not null

-- constraint private.budget_spend budget_spend_pkey
PRIMARY KEY (user_id, period_start)

-- constraint public.artifact_deletions artifact_deletions_attempts_check
CHECK (attempts >= 0)

-- constraint public.artifact_deletions artifact_deletions_bucket_id_name_key
UNIQUE (bucket_id, name)

-- constraint public.artifact_deletions artifact_deletions_pkey
PRIMARY KEY (id)

-- constraint public.artifact_deletions artifact_deletions_reason_check
CHECK (reason = ANY (ARRAY['job_deleted'::text, 'orphaned'::text]))

-- constraint public.job_events job_events_data_check
CHECK (jsonb_typeof(data) = 'object'::text)

-- constraint public.job_events job_events_job_id_fkey
FOREIGN KEY (job_id) REFERENCES public.jobs(id) ON DELETE CASCADE

-- constraint public.job_events job_events_pkey
PRIMARY KEY (id)

-- constraint public.job_events job_events_type_check
CHECK (type = ANY (ARRAY['progress'::text, 'partial'::text, 'log'::text]))

-- constraint public.job_events job_events_user_id_fkey
FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE

-- constraint public.job_kinds job_kinds_cache_scope_check
CHECK (cache_scope = ANY (ARRAY['user'::text, 'shared'::text]))

-- constraint public.job_kinds job_kinds_cache_ttl_seconds_check
CHECK (cache_ttl_seconds >= 0 AND cache_ttl_seconds <= 2592000)

-- constraint public.job_kinds job_kinds_default_priority_check
CHECK (default_priority >= '-100'::integer AND default_priority <= 100)

-- constraint public.job_kinds job_kinds_estimated_cost
CHECK (estimated_cost_usd >= 0::numeric AND estimated_cost_usd <= 1000::numeric)

-- constraint public.job_kinds job_kinds_kind_check
CHECK (kind ~ '^[a-z][a-z0-9_]{0,62}$'::text)

-- constraint public.job_kinds job_kinds_max_attempts_check
CHECK (max_attempts >= 1 AND max_attempts <= 100)

-- constraint public.job_kinds job_kinds_max_payload_bytes_check
CHECK (max_payload_bytes >= 2 AND max_payload_bytes <= 10485760)

-- constraint public.job_kinds job_kinds_max_running_per_user_check
CHECK (max_running_per_user >= 1 AND max_running_per_user <= 100000)

-- constraint public.job_kinds job_kinds_pkey
PRIMARY KEY (kind)

-- constraint public.job_kinds job_kinds_prompt_version_check
CHECK (prompt_version ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'::text)

-- constraint public.job_kinds job_kinds_rate_limit_per_minute_check
CHECK (rate_limit_per_minute >= 1 AND rate_limit_per_minute <= 100000)

-- constraint public.job_kinds job_kinds_timeout_seconds_check
CHECK (timeout_seconds >= 1 AND timeout_seconds <= 86400)

-- constraint public.job_result_cache job_result_cache_cache_key_check
CHECK (octet_length(cache_key) = 32)

-- constraint public.job_result_cache job_result_cache_job_id_fkey
FOREIGN KEY (job_id) REFERENCES public.jobs(id) ON DELETE CASCADE

-- constraint public.job_result_cache job_result_cache_job_id_key
UNIQUE (job_id)

-- constraint public.job_result_cache job_result_cache_kind_fkey
FOREIGN KEY (kind) REFERENCES public.job_kinds(kind) ON DELETE CASCADE

-- constraint public.job_result_cache job_result_cache_pkey
PRIMARY KEY (cache_key, user_id)

-- constraint public.job_result_cache job_result_cache_user_id_fkey
FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE

-- constraint public.jobs jobs_attempts_check
CHECK (attempts >= 0)

-- constraint public.jobs jobs_cached_is_succeeded
CHECK (NOT cached OR status = 'succeeded'::text AND cached_from IS NOT NULL)

-- constraint public.jobs jobs_depends_on_fkey
FOREIGN KEY (depends_on) REFERENCES public.jobs(id) ON DELETE SET NULL

-- constraint public.jobs jobs_error_check
CHECK (error IS NULL OR jsonb_typeof(error) = 'object'::text)

-- constraint public.jobs jobs_idempotency_key_check
CHECK (idempotency_key IS NULL OR length(idempotency_key) >= 1 AND length(idempotency_key) <= 200)

-- constraint public.jobs jobs_kind_fkey
FOREIGN KEY (kind) REFERENCES public.job_kinds(kind)

-- constraint public.jobs jobs_lease_expires_at_in_range
CHECK (lease_expires_at >= '1970-01-01 00:00:00+00'::timestamp with time zone AND lease_expires_at <= '9999-01-01 00:00:00+00'::timestamp with time zone)

-- constraint public.jobs jobs_max_attempts_check
CHECK (max_attempts >= 1)

-- constraint public.jobs jobs_payload_check
CHECK (jsonb_typeof(payload) = 'object'::text)

-- constraint public.jobs jobs_pkey
PRIMARY KEY (id)

-- constraint public.jobs jobs_priority_check
CHECK (priority >= '-100'::integer AND priority <= 100)

-- constraint public.jobs jobs_progress_check
CHECK (jsonb_typeof(progress) = 'object'::text)

-- constraint public.jobs jobs_run_at_in_range
CHECK (run_at >= '1970-01-01 00:00:00+00'::timestamp with time zone AND run_at <= '9999-01-01 00:00:00+00'::timestamp with time zone)

-- constraint public.jobs jobs_running_has_lease
CHECK (status <> 'running'::text OR lease_expires_at IS NOT NULL AND worker_id IS NOT NULL)

-- constraint public.jobs jobs_status_check
CHECK (status = ANY (ARRAY['waiting'::text, 'queued'::text, 'running'::text, 'succeeded'::text, 'failed'::text, 'cancelled'::text]))

-- constraint public.jobs jobs_terminal_has_finished_at
CHECK ((status <> ALL (ARRAY['succeeded'::text, 'failed'::text, 'cancelled'::text])) OR finished_at IS NOT NULL)

-- constraint public.jobs jobs_user_id_fkey
FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE

-- constraint public.kind_models kind_models_kind_fkey
FOREIGN KEY (kind) REFERENCES public.job_kinds(kind) ON DELETE CASCADE

-- constraint public.kind_models kind_models_kind_provider_model_key
UNIQUE (kind, provider, model)

-- constraint public.kind_models kind_models_model_check
CHECK (length(model) >= 1 AND length(model) <= 200)

-- constraint public.kind_models kind_models_pkey
PRIMARY KEY (kind, "position")

-- constraint public.kind_models kind_models_position_check
CHECK ("position" >= 1 AND "position" <= 10)

-- constraint public.kind_models kind_models_provider_check
CHECK (provider ~ '^[a-z][a-z0-9_-]{0,39}$'::text)

-- constraint public.model_capacity model_capacity_pkey
PRIMARY KEY (provider, model)

-- constraint public.model_prices model_prices_cached
CHECK (cached_input_usd_per_mtok >= 0::numeric)

-- constraint public.model_prices model_prices_image
CHECK (usd_per_image >= 0::numeric)

-- constraint public.model_prices model_prices_input
CHECK (input_usd_per_mtok >= 0::numeric)

-- constraint public.model_prices model_prices_model
CHECK (length(model) >= 1 AND length(model) <= 200)

-- constraint public.model_prices model_prices_output
CHECK (output_usd_per_mtok >= 0::numeric)

-- constraint public.model_prices model_prices_pkey
PRIMARY KEY (provider, model)

-- constraint public.model_prices model_prices_provider
CHECK (provider ~ '^[a-z][a-z0-9_-]{0,62}$'::text)

-- constraint public.plan_kind_limits plan_kind_limits_kind_fkey
FOREIGN KEY (kind) REFERENCES public.job_kinds(kind) ON DELETE CASCADE

-- constraint public.plan_kind_limits plan_kind_limits_pkey
PRIMARY KEY (plan, kind)

-- constraint public.plan_kind_limits plan_kind_limits_plan_fkey
FOREIGN KEY (plan) REFERENCES public.plans(plan) ON DELETE CASCADE

-- constraint public.plan_kind_limits plan_kind_limits_priority
CHECK (priority >= '-100'::integer AND priority <= 100)

-- constraint public.plan_kind_limits plan_kind_limits_rate
CHECK (rate_limit_per_minute >= 1 AND rate_limit_per_minute <= 100000)

-- constraint public.plan_kind_limits plan_kind_limits_running
CHECK (max_running_per_user >= 1 AND max_running_per_user <= 100000)

-- constraint public.plans plans_budget_range
CHECK (monthly_budget_usd IS NULL OR monthly_budget_usd >= 0::numeric AND monthly_budget_usd <= 1000000::numeric)

-- constraint public.plans plans_description_length
CHECK (length(description) <= 500)

-- constraint public.plans plans_pkey
PRIMARY KEY (plan)

-- constraint public.plans plans_plan_name
CHECK (plan ~ '^[a-z][a-z0-9_]{0,62}$'::text)

-- constraint public.provider_limits provider_limits_model_check
CHECK (length(model) >= 1 AND length(model) <= 200)

-- constraint public.provider_limits provider_limits_pkey
PRIMARY KEY (provider, model)

-- constraint public.provider_limits provider_limits_provider_check
CHECK (provider ~ '^[a-z][a-z0-9_-]{0,39}$'::text)

-- constraint public.provider_limits provider_limits_requests_per_minute_check
CHECK (requests_per_minute >= 1 AND requests_per_minute <= 1000000)

-- constraint public.provider_limits provider_limits_tokens_per_minute_check
CHECK (tokens_per_minute >= 1 AND tokens_per_minute <= 1000000000)

-- constraint public.usage_ledger usage_ledger_attempt
CHECK (attempt >= 1 AND attempt <= 100)

-- constraint public.usage_ledger usage_ledger_cached
CHECK (cached_tokens >= 0 AND cached_tokens <= input_tokens)

-- constraint public.usage_ledger usage_ledger_cost
CHECK (cost_usd >= 0::numeric)

-- constraint public.usage_ledger usage_ledger_images
CHECK (images >= 0)

-- constraint public.usage_ledger usage_ledger_input
CHECK (input_tokens >= 0)

-- constraint public.usage_ledger usage_ledger_job_id_fkey
FOREIGN KEY (job_id) REFERENCES public.jobs(id) ON DELETE SET NULL

-- constraint public.usage_ledger usage_ledger_kind_fkey
FOREIGN KEY (kind) REFERENCES public.job_kinds(kind)

-- constraint public.usage_ledger usage_ledger_latency
CHECK (latency_ms >= 0)

-- constraint public.usage_ledger usage_ledger_output
CHECK (output_tokens >= 0)

-- constraint public.usage_ledger usage_ledger_pkey
PRIMARY KEY (id)

-- constraint public.usage_ledger usage_ledger_user_id_fkey
FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE

-- constraint public.user_plans user_plans_pkey
PRIMARY KEY (user_id)

-- constraint public.user_plans user_plans_plan_fkey
FOREIGN KEY (plan) REFERENCES public.plans(plan)

-- constraint public.user_plans user_plans_user_id_fkey
FOREIGN KEY (user_id) REFERENCES auth.users(id) ON DELETE CASCADE

-- constraint public.worker_wakeups worker_wakeups_free_slots_check
CHECK (free_slots >= 0 AND free_slots <= 1000)

-- constraint public.worker_wakeups worker_wakeups_pkey
PRIMARY KEY (worker_id)

-- constraint public.worker_wakeups worker_wakeups_wake_via_check
CHECK (wake_via = ANY (ARRAY['realtime'::text, 'notify'::text]))

-- index private.budget_spend_pkey
CREATE UNIQUE INDEX budget_spend_pkey ON private.budget_spend USING btree (user_id, period_start)

-- index public.artifact_deletions_bucket_id_name_key
CREATE UNIQUE INDEX artifact_deletions_bucket_id_name_key ON public.artifact_deletions USING btree (bucket_id, name)

-- index public.artifact_deletions_due
CREATE INDEX artifact_deletions_due ON public.artifact_deletions USING btree (claimed_until NULLS FIRST, id)

-- index public.artifact_deletions_pkey
CREATE UNIQUE INDEX artifact_deletions_pkey ON public.artifact_deletions USING btree (id)

-- index public.job_events_by_job
CREATE INDEX job_events_by_job ON public.job_events USING btree (job_id, id)

-- index public.job_events_by_user
CREATE INDEX job_events_by_user ON public.job_events USING btree (user_id, created_at DESC)

-- index public.job_events_pkey
CREATE UNIQUE INDEX job_events_pkey ON public.job_events USING btree (id)

-- index public.job_kinds_pkey
CREATE UNIQUE INDEX job_kinds_pkey ON public.job_kinds USING btree (kind)

-- index public.job_result_cache_by_key
CREATE INDEX job_result_cache_by_key ON public.job_result_cache USING btree (cache_key, created_at DESC)

-- index public.job_result_cache_by_kind
CREATE INDEX job_result_cache_by_kind ON public.job_result_cache USING btree (kind, created_at)

-- index public.job_result_cache_by_user
CREATE INDEX job_result_cache_by_user ON public.job_result_cache USING btree (user_id)

-- index public.job_result_cache_job_id_key
CREATE UNIQUE INDEX job_result_cache_job_id_key ON public.job_result_cache USING btree (job_id)

-- index public.job_result_cache_pkey
CREATE UNIQUE INDEX job_result_cache_pkey ON public.job_result_cache USING btree (cache_key, user_id)

-- index public.jobs_cached_from
CREATE INDEX jobs_cached_from ON public.jobs USING btree (cached_from) WHERE cached

-- index public.jobs_depends_on
CREATE INDEX jobs_depends_on ON public.jobs USING btree (depends_on) WHERE (depends_on IS NOT NULL)

-- index public.jobs_finished
CREATE INDEX jobs_finished ON public.jobs USING btree (finished_at) WHERE (status = ANY (ARRAY['succeeded'::text, 'failed'::text, 'cancelled'::text]))

-- index public.jobs_idempotency_key_per_user
CREATE UNIQUE INDEX jobs_idempotency_key_per_user ON public.jobs USING btree (user_id, idempotency_key) WHERE (idempotency_key IS NOT NULL)

-- index public.jobs_pkey
CREATE UNIQUE INDEX jobs_pkey ON public.jobs USING btree (id)

-- index public.jobs_queued_by_user_kind
CREATE INDEX jobs_queued_by_user_kind ON public.jobs USING btree (user_id, kind, priority DESC, run_at, id) WHERE (status = 'queued'::text)

-- index public.jobs_queued_claim_order
CREATE INDEX jobs_queued_claim_order ON public.jobs USING btree (priority DESC, run_at, id) WHERE (status = 'queued'::text)

-- index public.jobs_running_by_user_kind
CREATE INDEX jobs_running_by_user_kind ON public.jobs USING btree (user_id, kind) WHERE (status = 'running'::text)

-- index public.jobs_running_lease
CREATE INDEX jobs_running_lease ON public.jobs USING btree (lease_expires_at) WHERE (status = 'running'::text)

-- index public.jobs_user_created
CREATE INDEX jobs_user_created ON public.jobs USING btree (user_id, created_at DESC)

-- index public.jobs_waiting_on
CREATE INDEX jobs_waiting_on ON public.jobs USING btree (depends_on) WHERE (status = 'waiting'::text)

-- index public.kind_models_kind_provider_model_key
CREATE UNIQUE INDEX kind_models_kind_provider_model_key ON public.kind_models USING btree (kind, provider, model)

-- index public.kind_models_pkey
CREATE UNIQUE INDEX kind_models_pkey ON public.kind_models USING btree (kind, "position")

-- index public.model_capacity_pkey
CREATE UNIQUE INDEX model_capacity_pkey ON public.model_capacity USING btree (provider, model)

-- index public.model_prices_pkey
CREATE UNIQUE INDEX model_prices_pkey ON public.model_prices USING btree (provider, model)

-- index public.plan_kind_limits_by_kind
CREATE INDEX plan_kind_limits_by_kind ON public.plan_kind_limits USING btree (kind)

-- index public.plan_kind_limits_pkey
CREATE UNIQUE INDEX plan_kind_limits_pkey ON public.plan_kind_limits USING btree (plan, kind)

-- index public.plans_one_default
CREATE UNIQUE INDEX plans_one_default ON public.plans USING btree (is_default) WHERE is_default

-- index public.plans_pkey
CREATE UNIQUE INDEX plans_pkey ON public.plans USING btree (plan)

-- index public.provider_limits_pkey
CREATE UNIQUE INDEX provider_limits_pkey ON public.provider_limits USING btree (provider, model)

-- index public.usage_ledger_job
CREATE INDEX usage_ledger_job ON public.usage_ledger USING btree (job_id)

-- index public.usage_ledger_kind_created
CREATE INDEX usage_ledger_kind_created ON public.usage_ledger USING btree (kind, created_at)

-- index public.usage_ledger_pkey
CREATE UNIQUE INDEX usage_ledger_pkey ON public.usage_ledger USING btree (id)

-- index public.usage_ledger_user_created
CREATE INDEX usage_ledger_user_created ON public.usage_ledger USING btree (user_id, created_at)

-- index public.user_plans_by_plan
CREATE INDEX user_plans_by_plan ON public.user_plans USING btree (plan)

-- index public.user_plans_pkey
CREATE UNIQUE INDEX user_plans_pkey ON public.user_plans USING btree (user_id)

-- index public.worker_wakeups_pkey
CREATE UNIQUE INDEX worker_wakeups_pkey ON public.worker_wakeups USING btree (worker_id)

-- rls private.budget_spend
enabled

-- rls private.wakeup_gate
enabled

-- rls public.artifact_deletions
enabled

-- rls public.job_events
enabled

-- rls public.job_kinds
enabled

-- rls public.job_result_cache
enabled

-- rls public.jobs
enabled

-- rls public.kind_models
enabled

-- rls public.model_capacity
enabled

-- rls public.model_prices
enabled

-- rls public.plan_kind_limits
enabled

-- rls public.plans
enabled

-- rls public.provider_limits
enabled

-- rls public.usage_ledger
enabled

-- rls public.user_plans
enabled

-- rls public.worker_wakeups
enabled

-- view public.active_jobs
security_invoker=true
 SELECT id,
    user_id,
    kind,
    worker_id,
    attempts,
    max_attempts,
    progress ->> 'percent'::text AS percent,
    progress ->> 'message'::text AS message,
    cancel_requested,
    started_at,
    round(EXTRACT(epoch FROM now() - started_at), 1) AS running_seconds,
    lease_expires_at,
    lease_expires_at < now() AS lease_expired
   FROM public.jobs j
  WHERE status = 'running'::text
  ORDER BY started_at;

-- view public.cost_per_kind
security_invoker=true
 SELECT kind,
    count(DISTINCT job_id)::integer AS jobs,
    count(*)::integer AS calls,
    round(COALESCE(sum(cost_usd), 0::numeric), 6) AS cost_usd,
    round(COALESCE(sum(cost_usd), 0::numeric) * 1000::numeric / NULLIF(count(DISTINCT job_id), 0)::numeric, 4) AS cost_per_1k_jobs_usd
   FROM public.usage_ledger u
  WHERE created_at > (now() - '30 days'::interval)
  GROUP BY kind;

-- view public.job_costs
security_invoker=true
 SELECT job_id,
    user_id,
    kind,
    count(*)::integer AS calls,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(images) AS images,
    round(COALESCE(sum(cost_usd), 0::numeric), 6) AS cost_usd,
    string_agg(DISTINCT (provider || '/'::text) || model, ', '::text) AS models
   FROM public.usage_ledger u
  WHERE job_id IS NOT NULL
  GROUP BY job_id, user_id, kind;

-- view public.job_stats
security_invoker=true
 SELECT kind,
    status,
    count(*)::integer AS jobs,
    round(percentile_cont(0.5::double precision) WITHIN GROUP (ORDER BY (EXTRACT(epoch FROM started_at - created_at)::double precision)) FILTER (WHERE started_at IS NOT NULL)::numeric, 3) AS wait_p50_seconds,
    round(percentile_cont(0.95::double precision) WITHIN GROUP (ORDER BY (EXTRACT(epoch FROM started_at - created_at)::double precision)) FILTER (WHERE started_at IS NOT NULL)::numeric, 3) AS wait_p95_seconds,
    round(percentile_cont(0.5::double precision) WITHIN GROUP (ORDER BY (EXTRACT(epoch FROM finished_at - started_at)::double precision)) FILTER (WHERE finished_at IS NOT NULL AND started_at IS NOT NULL)::numeric, 3) AS run_p50_seconds,
    round(percentile_cont(0.95::double precision) WITHIN GROUP (ORDER BY (EXTRACT(epoch FROM finished_at - started_at)::double precision)) FILTER (WHERE finished_at IS NOT NULL AND started_at IS NOT NULL)::numeric, 3) AS run_p95_seconds,
    sum(attempts)::integer AS attempts
   FROM public.jobs j
  WHERE created_at > (now() - '24:00:00'::interval)
  GROUP BY kind, status;

-- view public.my_spend
security_invoker=true
 SELECT me.user_id,
    p.plan,
    p.monthly_budget_usd AS budget_usd,
    round(COALESCE(s.spent, 0::numeric), 6) AS spent_usd,
    round(COALESCE(r.reserved, 0::numeric), 6) AS reserved_usd,
        CASE
            WHEN p.monthly_budget_usd IS NOT NULL THEN round(GREATEST(0::numeric, p.monthly_budget_usd - COALESCE(s.spent, 0::numeric)), 6)
            ELSE NULL::numeric
        END AS remaining_usd,
    COALESCE(s.calls, 0) AS calls,
    date_trunc('month'::text, now(), 'UTC'::text) AS period_start,
    date_trunc('month'::text, now(), 'UTC'::text) + '1 mon'::interval AS resets_at
   FROM ( SELECT auth.uid() AS user_id) me
     LEFT JOIN public.user_plans up ON up.user_id = me.user_id
     JOIN public.plans p ON p.plan = COALESCE(up.plan, ( SELECT d.plan
           FROM public.plans d
          WHERE d.is_default))
     LEFT JOIN LATERAL ( SELECT sum(u.cost_usd) AS spent,
            count(*)::integer AS calls
           FROM public.usage_ledger u
          WHERE u.user_id = me.user_id AND u.created_at >= date_trunc('month'::text, now(), 'UTC'::text)) s ON true
     LEFT JOIN LATERAL ( SELECT sum(GREATEST(0::numeric, k.estimated_cost_usd - COALESCE(( SELECT sum(u.cost_usd) AS sum
                   FROM public.usage_ledger u
                  WHERE u.job_id = j.id), 0::numeric))) AS reserved
           FROM public.jobs j
             JOIN public.job_kinds k ON k.kind = j.kind
          WHERE j.user_id = me.user_id AND (j.status = ANY (ARRAY['queued'::text, 'waiting'::text, 'running'::text]))) r ON true
  WHERE me.user_id IS NOT NULL;

-- view public.pending_jobs_queue
security_invoker=true
 SELECT id,
    user_id,
    kind,
    status,
    priority,
    run_at,
    attempts,
    max_attempts,
    depends_on,
    row_number() OVER (ORDER BY (status = 'waiting'::text), priority DESC, run_at, id)::integer AS queue_position,
        CASE
            WHEN status = 'waiting'::text THEN 'waiting for job '::text || depends_on::text
            WHEN run_at > now() AND (progress ->> 'message'::text) ~~ 'waiting: %'::text THEN progress ->> 'message'::text
            WHEN run_at > now() AND attempts > 0 THEN 'retry backoff after attempt '::text || attempts
            WHEN run_at > now() THEN 'scheduled'::text
            ELSE 'due'::text
        END AS reason,
    round(EXTRACT(epoch FROM now() - created_at), 1) AS age_seconds
   FROM public.jobs j
  WHERE status = ANY (ARRAY['queued'::text, 'waiting'::text])
  ORDER BY (row_number() OVER (ORDER BY (status = 'waiting'::text), priority DESC, run_at, id)::integer);

-- view public.spend_by_user_month
security_invoker=true
 SELECT user_id,
    (date_trunc('month'::text, created_at, 'UTC'::text) AT TIME ZONE 'UTC'::text)::date AS month,
    count(*)::integer AS calls,
    count(DISTINCT job_id)::integer AS jobs,
    round(COALESCE(sum(cost_usd), 0::numeric), 6) AS spent_usd,
    count(*) FILTER (WHERE cost_usd IS NULL)::integer AS unpriced_calls
   FROM public.usage_ledger u
  GROUP BY user_id, (date_trunc('month'::text, created_at, 'UTC'::text));

-- view public.tokens_per_kind
security_invoker=true
 SELECT kind,
    provider,
    model,
    count(*)::integer AS calls,
    sum(input_tokens) AS input_tokens,
    sum(cached_tokens) AS cached_tokens,
    sum(output_tokens) AS output_tokens,
    sum(images) AS images,
    round(avg(latency_ms), 1) AS avg_latency_ms
   FROM public.usage_ledger u
  WHERE created_at > (now() - '30 days'::interval)
  GROUP BY kind, provider, model;

-- sequence public.artifact_deletions_id_seq
bigint

-- sequence public.job_events_id_seq
bigint

-- sequence public.usage_ledger_id_seq
bigint

-- trigger public.active_jobs read_only
CREATE TRIGGER read_only INSTEAD OF INSERT OR DELETE OR UPDATE ON public.active_jobs FOR EACH ROW EXECUTE FUNCTION private.refuse_view_write()

-- trigger public.cost_per_kind read_only
CREATE TRIGGER read_only INSTEAD OF INSERT OR DELETE OR UPDATE ON public.cost_per_kind FOR EACH ROW EXECUTE FUNCTION private.refuse_view_write()

-- trigger public.job_costs read_only
CREATE TRIGGER read_only INSTEAD OF INSERT OR DELETE OR UPDATE ON public.job_costs FOR EACH ROW EXECUTE FUNCTION private.refuse_view_write()

-- trigger public.job_events job_events_broadcast
CREATE TRIGGER job_events_broadcast AFTER INSERT ON public.job_events FOR EACH ROW EXECUTE FUNCTION private.broadcast_job_event()

-- trigger public.job_stats read_only
CREATE TRIGGER read_only INSTEAD OF INSERT OR DELETE OR UPDATE ON public.job_stats FOR EACH ROW EXECUTE FUNCTION private.refuse_view_write()

-- trigger public.jobs jobs_broadcast_change
CREATE TRIGGER jobs_broadcast_change AFTER UPDATE ON public.jobs FOR EACH ROW WHEN ((old.status IS DISTINCT FROM new.status OR old.progress IS DISTINCT FROM new.progress OR old.attempts IS DISTINCT FROM new.attempts OR old.error IS DISTINCT FROM new.error OR old.cancel_requested IS DISTINCT FROM new.cancel_requested OR old.result IS DISTINCT FROM new.result OR old.run_at IS DISTINCT FROM new.run_at) AND NOT COALESCE(new.id::text = ANY (string_to_array(NULLIF(current_setting('jobs.quiet_broadcasts'::text, true), ''::text), ','::text)), false) AND NOT (old.status = 'queued'::text AND new.status = 'running'::text AND COALESCE(current_setting('jobs.quiet_claims'::text, true) = 'on'::text, false))) EXECUTE FUNCTION private.broadcast_job_change()

-- trigger public.jobs jobs_delete_cached_copies
CREATE TRIGGER jobs_delete_cached_copies AFTER DELETE ON public.jobs REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION private.delete_cached_copies()

-- trigger public.jobs jobs_record_artifact_deletions
CREATE TRIGGER jobs_record_artifact_deletions AFTER DELETE ON public.jobs REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION private.record_artifact_deletions()

-- trigger public.jobs jobs_touch_updated_at
CREATE TRIGGER jobs_touch_updated_at BEFORE UPDATE ON public.jobs FOR EACH ROW WHEN (NOT old.updated_at IS DISTINCT FROM new.updated_at) EXECUTE FUNCTION private.touch_updated_at()

-- trigger public.jobs jobs_wake_on_insert
CREATE TRIGGER jobs_wake_on_insert AFTER INSERT ON public.jobs REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION private.wake_for_queued_jobs()

-- trigger public.jobs jobs_wake_on_update
CREATE TRIGGER jobs_wake_on_update AFTER UPDATE ON public.jobs REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION private.wake_for_queued_jobs()

-- trigger public.my_spend read_only
CREATE TRIGGER read_only INSTEAD OF INSERT OR DELETE OR UPDATE ON public.my_spend FOR EACH ROW EXECUTE FUNCTION private.refuse_view_write()

-- trigger public.pending_jobs_queue read_only
CREATE TRIGGER read_only INSTEAD OF INSERT OR DELETE OR UPDATE ON public.pending_jobs_queue FOR EACH ROW EXECUTE FUNCTION private.refuse_view_write()

-- trigger public.spend_by_user_month read_only
CREATE TRIGGER read_only INSTEAD OF INSERT OR DELETE OR UPDATE ON public.spend_by_user_month FOR EACH ROW EXECUTE FUNCTION private.refuse_view_write()

-- trigger public.tokens_per_kind read_only
CREATE TRIGGER read_only INSTEAD OF INSERT OR DELETE OR UPDATE ON public.tokens_per_kind FOR EACH ROW EXECUTE FUNCTION private.refuse_view_write()

-- trigger public.usage_ledger usage_ledger_spend_delete
CREATE TRIGGER usage_ledger_spend_delete AFTER DELETE ON public.usage_ledger REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION private.keep_budget_spend()

-- trigger public.usage_ledger usage_ledger_spend_insert
CREATE TRIGGER usage_ledger_spend_insert AFTER INSERT ON public.usage_ledger REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION private.keep_budget_spend()

-- trigger public.usage_ledger usage_ledger_spend_truncate
CREATE TRIGGER usage_ledger_spend_truncate AFTER TRUNCATE ON public.usage_ledger FOR EACH STATEMENT EXECUTE FUNCTION private.keep_budget_spend()

-- trigger public.usage_ledger usage_ledger_spend_update
CREATE TRIGGER usage_ledger_spend_update AFTER UPDATE ON public.usage_ledger REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION private.keep_budget_spend()

-- function private.add_job_event(uuid,text,jsonb)
CREATE OR REPLACE FUNCTION private.add_job_event(job_id uuid, type text, data jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_payload jsonb;
begin
  insert into public.job_events as e (job_id, user_id, type, data)
  select j.id, j.user_id, add_job_event.type, add_job_event.data from public.jobs j where j.id = add_job_event.job_id
  returning private.job_event_payload(e) into v_payload;
  return v_payload;
end;
$function$

-- function private.advance_dependents(uuid[])
CREATE OR REPLACE FUNCTION private.advance_dependents(finished uuid[])
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
begin
  -- Most jobs have no dependents: a probe of the (small) waiting index, and no UPDATE statement
  -- (with its statement triggers) for them.
  if not exists (select 1 from public.jobs d where d.depends_on = any(finished) and d.status = 'waiting') then
    return;
  end if;
  update public.jobs d set status = 'queued', run_at = greatest(d.run_at, now())
  from public.jobs p
  where p.id = any(finished) and p.status = 'succeeded' and d.depends_on = p.id and d.status = 'waiting';
  -- failed or cancelled: dependents are cancelled, which cascades down the pipeline (this
  -- statement finishes them, and its trigger calls this function for them).
  update public.jobs d
  set status = 'cancelled', finished_at = now(),
      error = jsonb_build_object('type', 'dependency_failed', 'retryable', false, 'attempt', 0,
                                 'message', format('dependency %s %s', p.id, p.status))
  from public.jobs p
  where p.id = any(finished) and p.status in ('failed', 'cancelled') and d.depends_on = p.id
    and d.status = 'waiting';
end;
$function$

-- function private.broadcast_job_change()
CREATE OR REPLACE FUNCTION private.broadcast_job_change()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  -- Lease renewals alone are not news for the user.
  if tg_op = 'UPDATE' and (old.status, old.progress, old.attempts, old.error, old.cancel_requested, old.result, old.run_at)
                          is not distinct from
                          (new.status, new.progress, new.attempts, new.error, new.cancel_requested, new.result, new.run_at) then
    return null;
  end if;
  if private.is_quiet(new.id) then
    return null;  -- the calling function sends this job's one message itself
  end if;
  -- A worker's claim (claim_jobs_or_park, complete_and_claim) is quiet: the worker announces the
  -- running job with its first report (report_progress_batch, "started"), one message for both.
  if tg_op = 'UPDATE' and old.status = 'queued' and new.status = 'running'
     and current_setting('jobs.quiet_claims', true) = 'on' then
    return null;
  end if;
  perform realtime.send(private.job_broadcast_payload(new), 'job', 'jobs:' || new.user_id::text, true);
  return null;
end;
$function$

-- function private.broadcast_job_event()
CREATE OR REPLACE FUNCTION private.broadcast_job_event()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  if private.is_quiet(new.job_id) then
    return null;
  end if;
  perform realtime.send(private.job_event_payload(new), 'job_event', 'jobs:' || new.user_id::text, true);
  return null;
end;
$function$

-- function private.budget_period_start(timestamp with time zone)
CREATE OR REPLACE FUNCTION private.budget_period_start(at_time timestamp with time zone)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
begin
  return date_trunc('month', at_time, 'UTC');
end;
$function$

-- function private.budget_use(uuid)
CREATE OR REPLACE FUNCTION private.budget_use(p_user uuid, OUT spent_usd numeric, OUT reserved_usd numeric, OUT unfinished integer)
 RETURNS record
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
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
$function$

-- function private.cache_key(text,jsonb)
CREATE OR REPLACE FUNCTION private.cache_key(p_kind text, p_payload jsonb)
 RETURNS bytea
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
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
$function$

-- function private.cached_result(uuid,text,jsonb)
CREATE OR REPLACE FUNCTION private.cached_result(p_user uuid, p_kind text, p_payload jsonb)
 RETURNS public.jobs
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
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
$function$

-- function private.check_array(text,anyarray,integer)
CREATE OR REPLACE FUNCTION private.check_array(field text, value anyarray, max_items integer)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  if value is null then
    return;
  end if;
  if array_ndims(value) > 1 then
    perform private.raise_invalid(field, format('must be a one-dimensional array, got %s dimensions', array_ndims(value)));
  elsif cardinality(value) > max_items then
    perform private.raise_invalid(field, format('must hold at most %s items, got %s', max_items, cardinality(value)));
  elsif array_position(value, null) is not null then
    perform private.raise_invalid(field, format('must not contain null, got one at index %s (from 0)', array_position(value, null) - 1));
  end if;
end;
$function$

-- function private.check_batch(text,jsonb,text)
CREATE OR REPLACE FUNCTION private.check_batch(field text, items jsonb, shape text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  n integer;
begin
  if items is null or jsonb_typeof(items) <> 'array' then
    perform private.raise_invalid(field,
      format('must be a JSON array of %s objects, got %s', shape, coalesce(jsonb_typeof(items), 'null')));
  end if;
  n := jsonb_array_length(items);
  if n = 0 or n > 1000 then
    perform private.raise_invalid(field, format('must hold 1 to 1000 items, got %s', n));
  end if;
end;
$function$

-- function private.check_batch_item(text,jsonb,text[])
CREATE OR REPLACE FUNCTION private.check_batch_item(field text, item jsonb, allowed text[])
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  perform private.check_batch_object(field, item, allowed);
  if jsonb_typeof(item -> 'job_id') is distinct from 'string'
     or item ->> 'job_id' !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    perform private.raise_invalid(field || '.job_id', 'must be a UUID string');
  end if;
end;
$function$

-- function private.check_batch_object(text,jsonb,text[])
CREATE OR REPLACE FUNCTION private.check_batch_object(field text, item jsonb, allowed text[])
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  k text;
begin
  if jsonb_typeof(item) <> 'object' then
    perform private.raise_invalid(field, format('must be an object, got %s', jsonb_typeof(item)));
  end if;
  for k in select jsonb_object_keys(item) loop
    if not k = any(allowed) then
      perform private.raise_invalid(field, format('unknown key "%s"; allowed: %s', k, array_to_string(allowed, ', ')));
    end if;
  end loop;
end;
$function$

-- function private.check_budget(uuid)
CREATE OR REPLACE FUNCTION private.check_budget(p_user uuid)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
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
$function$

-- function private.check_count(text,integer,integer)
CREATE OR REPLACE FUNCTION private.check_count(field text, value integer, max_value integer)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  if value is null or value not between 0 and max_value then
    perform private.raise_invalid(field, format('must be between 0 and %s, got %s', max_value, coalesce(value::text, 'null')));
  end if;
end;
$function$

-- function private.check_interval(text,interval,interval)
CREATE OR REPLACE FUNCTION private.check_interval(field text, value interval, max_value interval)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  if value is null or value < interval '0' then
    perform private.raise_invalid(field, format('must be a non-negative interval, got %s', coalesce(value::text, 'null')));
  elsif not isfinite(value) or value > max_value then
    perform private.raise_invalid(field, format('must be at most %s, got %s', max_value, value));
  end if;
end;
$function$

-- function private.check_json(text,jsonb,integer)
CREATE OR REPLACE FUNCTION private.check_json(field text, value jsonb, max_depth integer)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  v_number jsonb;
begin
  if value is null then
    return;
  end if;
  -- A container at .** level max_depth (the root is level 0) is nested max_depth + 1 deep.
  if jsonb_path_exists(value,
       format('strict $.**{%s} ? (@.type() == "object" || @.type() == "array")', max_depth)::jsonpath) then
    perform private.raise_invalid(field, format('must not nest objects and arrays deeper than %s levels', max_depth));
  end if;
  v_number := jsonb_path_query_first(value,
    'strict $.** ? (@.type() == "number" && (@ > 1.7976931348623157e308 || @ < -1.7976931348623157e308))');
  if v_number is not null then
    perform private.raise_invalid(field, format('number %s is outside the range of a double (about 1.8e308)',
      private.excerpt(v_number::text, 40)));
  end if;
end;
$function$

-- function private.check_json_integer(text,jsonb)
CREATE OR REPLACE FUNCTION private.check_json_integer(field text, value jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  if coalesce(jsonb_typeof(value), 'null') = 'null' then
    return;
  end if;
  if jsonb_typeof(value) <> 'number' then
    perform private.raise_invalid(field, format('must be an integer, got %s', private.excerpt(value::text, 80)));
  end if;
  if (value #>> '{}')::numeric <> trunc((value #>> '{}')::numeric) or abs((value #>> '{}')::numeric) > 2147483647 then
    perform private.raise_invalid(field, format('must be an integer, got %s', private.excerpt(value::text, 80)));
  end if;
end;
$function$

-- function private.check_json_string(text,jsonb)
CREATE OR REPLACE FUNCTION private.check_json_string(field text, value jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  if jsonb_typeof(value) is distinct from 'string' then
    perform private.raise_invalid(field, format('must be a string, got %s', coalesce(jsonb_typeof(value), 'nothing')));
  end if;
end;
$function$

-- function private.check_kinds(text,text[])
CREATE OR REPLACE FUNCTION private.check_kinds(field text, kinds text[])
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_unknown text;
begin
  if kinds is null then
    return;  -- any kind; every claim passes here, so no query for it
  end if;
  perform private.check_array(field, kinds, 100);
  select string_agg(format('"%s"', private.excerpt(u.k, 63)), ', ' order by u.n)
  into v_unknown
  from (
    select k, n from unnest(kinds) with ordinality as t(k, n)
    where not exists (select 1 from public.job_kinds jk where jk.kind = t.k)
    order by n
    limit 5
  ) u;
  if v_unknown is not null then
    perform private.raise_invalid(field, 'unknown job kind(s): ' || v_unknown);
  end if;
end;
$function$

-- function private.check_lease_seconds(integer)
CREATE OR REPLACE FUNCTION private.check_lease_seconds(lease_seconds integer)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  if lease_seconds is null or lease_seconds not between 5 and 3600 then
    perform private.raise_invalid('lease_seconds', format('must be between 5 and 3600, got %s', coalesce(lease_seconds::text, 'null')));
  end if;
end;
$function$

-- function private.check_plan_name(text,text,boolean)
CREATE OR REPLACE FUNCTION private.check_plan_name(field text, plan text, must_exist boolean)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
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
$function$

-- function private.check_plan_priority(uuid,public.job_kinds,integer)
CREATE OR REPLACE FUNCTION private.check_plan_priority(p_user uuid, kind_on_plan public.job_kinds, requested integer)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  if requested is not null and requested > kind_on_plan.default_priority then
    perform private.raise_invalid('priority',
      format('must be at most %s for kind "%s" on plan "%s", got %s',
             kind_on_plan.default_priority, kind_on_plan.kind, coalesce((private.user_plan(p_user)).plan, 'none'), requested),
      'a caller may only lower its plan''s priority; a higher one comes with another plan');
  end if;
end;
$function$

-- function private.check_progress_fields(text,jsonb)
CREATE OR REPLACE FUNCTION private.check_progress_fields(field text, item jsonb)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  if item ? 'percent' and jsonb_typeof(item -> 'percent') <> 'null' then
    if jsonb_typeof(item -> 'percent') <> 'number' then
      perform private.raise_invalid(field || '.percent', format('must be a number, got %s', jsonb_typeof(item -> 'percent')));
    end if;
    if (item ->> 'percent')::numeric not between 0 and 100 then
      perform private.raise_invalid(field || '.percent',
        format('must be between 0 and 100, got %s', private.excerpt(item ->> 'percent', 20)));
    end if;
  end if;
  if item ? 'message' and jsonb_typeof(item -> 'message') <> 'null' then
    if jsonb_typeof(item -> 'message') <> 'string' then
      perform private.raise_invalid(field || '.message', format('must be a string, got %s', jsonb_typeof(item -> 'message')));
    end if;
    if length(item ->> 'message') > 1000 then
      perform private.raise_invalid(field || '.message',
        format('must be at most 1000 characters, got %s', length(item ->> 'message')));
    end if;
  end if;
end;
$function$

-- function private.check_provider_model(text,text)
CREATE OR REPLACE FUNCTION private.check_provider_model(provider text, model text)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
begin
  if provider is null or provider !~ '^[a-z][a-z0-9_-]{0,39}$' then
    perform private.raise_invalid('provider', format(
      'must be a lowercase provider name such as anthropic (letters, digits, _ or -, at most 40), got %s',
      coalesce(quote_literal(private.excerpt(provider, 60)), 'null')));
  end if;
  if model is null or length(model) not between 1 and 200 then
    perform private.raise_invalid('model', format('must be a model name of 1 to 200 characters, got %s',
      coalesce(quote_literal(private.excerpt(model, 60)), 'null')));
  end if;
end;
$function$

-- function private.check_timestamp(text,timestamp with time zone,interval,interval)
CREATE OR REPLACE FUNCTION private.check_timestamp(field text, value timestamp with time zone, max_past interval, max_ahead interval)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  if value is null then
    return;
  end if;
  if not isfinite(value) then
    perform private.raise_invalid(field, format('must be a finite timestamp, got %s', value));
  elsif value < now() - max_past then
    perform private.raise_invalid(field, format('must not be more than %s in the past, got %s', max_past, value));
  elsif value > now() + max_ahead then
    perform private.raise_invalid(field, format('must be within %s from now, got %s', max_ahead, value));
  end if;
end;
$function$

-- function private.check_worker_id(text)
CREATE OR REPLACE FUNCTION private.check_worker_id(worker_id text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  if worker_id is null or length(btrim(worker_id)) = 0 then
    perform private.raise_invalid('worker_id', 'must be a non-empty string');
  elsif length(worker_id) > 200 then
    perform private.raise_invalid('worker_id', format('must be at most 200 characters, got %s', length(worker_id)));
  end if;
end;
$function$

-- function private.claimable_jobs(uuid,text,integer)
CREATE OR REPLACE FUNCTION private.claimable_jobs(p_user uuid, p_kind text, take integer)
 RETURNS uuid[]
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
begin
  return array(
    select q.id from public.jobs q
    where q.status = 'queued' and q.run_at <= now() and q.user_id = p_user and q.kind = p_kind
    order by q.priority desc, q.run_at, q.id
    limit greatest(0, take));
end;
$function$

-- function private.delete_cached_copies()
CREATE OR REPLACE FUNCTION private.delete_cached_copies()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$

-- function private.excerpt(text,integer)
CREATE OR REPLACE FUNCTION private.excerpt(value text, max_chars integer)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$
  select case when length(value) > max_chars then left(value, max_chars - 3) || '...' else value end
$function$

-- function private.grant_calls(text[],text)
CREATE OR REPLACE FUNCTION private.grant_calls(calls text[], role text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  fn text;
begin
  if role not in ('authenticated', 'service_role') then
    raise exception 'grant_calls: role must be authenticated or service_role, got %', role;
  end if;
  foreach fn in array calls loop
    execute format('revoke all on function %s from public, anon, authenticated', fn::regprocedure);
    execute format('grant execute on function %s to %I', fn::regprocedure, role);
  end loop;
end;
$function$

-- function private.group_key(uuid,text)
CREATE OR REPLACE FUNCTION private.group_key(user_id uuid, kind text)
 RETURNS integer
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
begin
  return hashtext(user_id::text || '/' || kind);
end;
$function$

-- function private.held_job(text,uuid,text)
CREATE OR REPLACE FUNCTION private.held_job(fn text, job_id uuid, worker_id text)
 RETURNS public.jobs
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
declare
  j public.jobs;
begin
  perform private.check_worker_id(worker_id);
  if job_id is null then
    perform private.raise_invalid('job_id', 'must not be null');
  end if;
  select * into j from public.jobs where id = job_id for update;
  if not found then
    raise exception '%: job % not found', fn, job_id using errcode = 'PT404';
  end if;
  if j.status <> 'running' or j.worker_id is distinct from worker_id then
    raise exception '%: job % is not held by worker "%"', fn, job_id, worker_id
      using errcode = 'PT409',
            detail = format('status %s, held by %s', j.status, coalesce('"' || j.worker_id || '"', 'no worker')),
            hint = 'the lease was lost (reaped, released or cancelled); drop this job';
  end if;
  if j.lease_expires_at < now() then
    raise exception '%: the lease of job % expired at %', fn, job_id, j.lease_expires_at
      using errcode = 'PT409',
            detail = format('worker "%s", lease expired %s ago', worker_id, now() - j.lease_expires_at),
            hint = 'renew leases more often than lease_seconds; the reaper will retry this job';
  end if;
  return j;
end;
$function$

-- function private.is_quiet(uuid)
CREATE OR REPLACE FUNCTION private.is_quiet(job_id uuid)
 RETURNS boolean
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return job_id::text = any(string_to_array(nullif(current_setting('jobs.quiet_broadcasts', true), ''), ','));
end;
$function$

-- function private.job_broadcast_payload(public.jobs)
CREATE OR REPLACE FUNCTION private.job_broadcast_payload(j public.jobs)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return jsonb_build_object(
      'id', j.id, 'kind', j.kind, 'status', j.status, 'progress', j.progress,
      'attempts', j.attempts, 'max_attempts', j.max_attempts, 'error', j.error,
      'cancel_requested', j.cancel_requested, 'run_at', j.run_at, 'depends_on', j.depends_on,
      'created_at', j.created_at, 'started_at', j.started_at, 'finished_at', j.finished_at,
      'updated_at', j.updated_at)
    || case
         when j.result is null then '{}'::jsonb
         when octet_length(j.result::text) <= 8192 then jsonb_build_object('result', j.result)
         else jsonb_build_object('result_truncated', true)
       end;
end;
$function$

-- function private.job_event_payload(public.job_events)
CREATE OR REPLACE FUNCTION private.job_event_payload(e public.job_events)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return jsonb_build_object('id', e.id, 'job_id', e.job_id, 'type', e.type, 'data', e.data, 'created_at', e.created_at);
end;
$function$

-- function private.job_message(public.jobs,jsonb)
CREATE OR REPLACE FUNCTION private.job_message(j public.jobs, events jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return private.job_broadcast_payload(j) || case when jsonb_array_length(coalesce(events, '[]')) > 0
                                                  then jsonb_build_object('events', events) else '{}'::jsonb end;
end;
$function$

-- function private.keep_budget_spend()
CREATE OR REPLACE FUNCTION private.keep_budget_spend()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$

-- function private.kind_on_plan(uuid,public.job_kinds)
CREATE OR REPLACE FUNCTION private.kind_on_plan(p_user uuid, p_kind public.job_kinds)
 RETURNS public.job_kinds
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
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
$function$

-- function private.lock_class(text)
CREATE OR REPLACE FUNCTION private.lock_class(name text)
 RETURNS integer
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
begin
  return case name when 'rate_limit' then 7301 when 'claim_group' then 7302 end;
end;
$function$

-- function private.lock_held_jobs(uuid[],text)
CREATE OR REPLACE FUNCTION private.lock_held_jobs(job_ids uuid[], worker_id text)
 RETURNS uuid[]
 LANGUAGE plpgsql
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_held uuid[];
begin
  select coalesce(array_agg(l.id) filter (where private.not_held_reason(l.j, lock_held_jobs.worker_id) is null), '{}')
  into v_held
  from (select j.id, j from public.jobs j where j.id = any(job_ids) order by j.id for update) l;
  return v_held;
end;
$function$

-- function private.next_progress(jsonb,jsonb)
CREATE OR REPLACE FUNCTION private.next_progress(prev jsonb, step jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
begin
  return jsonb_build_object(
      'percent', coalesce(round((step ->> 'percent')::numeric, 1), (prev ->> 'percent')::numeric, 0),
      'message', coalesce(step ->> 'message', prev ->> 'message'));
end;
$function$

-- function private.not_held_reason(public.jobs,text)
CREATE OR REPLACE FUNCTION private.not_held_reason(j public.jobs, worker_id text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return case
      when j.id is null then 'not found'
      when j.status <> 'running' or j.worker_id is distinct from worker_id then
        format('not held by worker "%s" (status %s, held by %s)', worker_id, j.status,
               coalesce('"' || j.worker_id || '"', 'no worker'))
      when j.lease_expires_at < now() then format('the lease expired at %s', j.lease_expires_at)
    end;
end;
$function$

-- function private.purge_expired_cache_entries()
CREATE OR REPLACE FUNCTION private.purge_expired_cache_entries()
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
  delete from public.job_result_cache c
  using public.job_kinds k
  where k.kind = c.kind
    and (coalesce(k.cache_ttl_seconds, 0) = 0 or c.created_at <= now() - make_interval(secs => k.cache_ttl_seconds))
$function$

-- function private.quiet_broadcasts(uuid[])
CREATE OR REPLACE FUNCTION private.quiet_broadcasts(job_ids uuid[])
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  perform set_config('jobs.quiet_broadcasts', coalesce(array_to_string(job_ids, ','), ''), true);
end;
$function$

-- function private.raise_invalid(text,text,text)
CREATE OR REPLACE FUNCTION private.raise_invalid(field text, problem text, hint text DEFAULT NULL::text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  raise exception '%: %', field, problem using errcode = '22023', hint = coalesce(hint, '');
end;
$function$

-- function private.record_artifact_deletions()
CREATE OR REPLACE FUNCTION private.record_artifact_deletions()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$

-- function private.record_usage_items(text,jsonb,text[])
CREATE OR REPLACE FUNCTION private.record_usage_items(worker_id text, calls jsonb, names text[])
 RETURNS TABLE(job_id uuid, recorded boolean, cost_usd numeric, reason text)
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
#variable_conflict use_column
declare
  item jsonb;
  i integer := 1;
  k text;
  v_row public.usage_ledger;
  v_message text;
  v_hint text;
begin
  -- Every item plainly valid (the checks below and record_usage's, as one test; anything unusual,
  -- say 1.0 for an integer, fails it) and its job there: all recorded in one INSERT, priced by
  -- record_usage's formula, without a call and a subtransaction per item (~0.5 ms an item:
  -- bench/FIXES.md, "usage in one statement"). Otherwise the items are walked one by one below,
  -- which records exactly the same rows or names the first fault.
  if jsonb_array_length(calls) > 0 and not exists (
    select 1
    from jsonb_array_elements(calls) as t(e)
    cross join lateral (
      -- CASE, not AND, guards each cast: PostgreSQL may evaluate the operands of AND in any order.
      select case
        when jsonb_typeof(t.e) = 'object'
             and (t.e - '{job_id,attempt,provider,model,input_tokens,output_tokens,cached_tokens,images,latency_ms}'::text[]) = '{}'::jsonb
             and jsonb_typeof(t.e -> 'job_id') = 'string'
             and (t.e ->> 'job_id') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
             and jsonb_typeof(t.e -> 'attempt') = 'number' and (t.e ->> 'attempt') ~ '^[0-9]{1,9}$'
             and jsonb_typeof(t.e -> 'provider') = 'string' and jsonb_typeof(t.e -> 'model') = 'string'
             -- Each count absent, null, or a JSON number written as plain digits (a string of
             -- digits reads the same through ->>, so its type is checked too).
             and not exists (
               select 1 from unnest('{input_tokens,output_tokens,cached_tokens,images,latency_ms}'::text[]) as c(k)
               where coalesce(jsonb_typeof(t.e -> c.k), 'null') not in ('null', 'number')
                  or coalesce(t.e ->> c.k, '0') !~ '^[0-9]{1,9}$')
        then true else false end as shaped
    ) s
    -- A lookup per item (a join may be planned as a read of the whole table). Null: no such job.
    cross join lateral (
      select case when s.shaped then (select j.attempts from public.jobs j where j.id = (t.e ->> 'job_id')::uuid) end as attempts
    ) j
    where not coalesce(case when j.attempts is not null then
        (t.e ->> 'attempt')::integer between 1 and greatest(j.attempts, 1)
        and (t.e ->> 'provider') ~ '^[a-z][a-z0-9_-]{0,62}$'
        and length(t.e ->> 'model') between 1 and 200 and (t.e ->> 'model') !~ '\s'
        and coalesce((t.e ->> 'input_tokens')::integer, 0) <= 100000000
        and coalesce((t.e ->> 'output_tokens')::integer, 0) <= 100000000
        and coalesce((t.e ->> 'cached_tokens')::integer, 0) <= coalesce((t.e ->> 'input_tokens')::integer, 0)
        and coalesce((t.e ->> 'images')::integer, 0) <= 1000
        and coalesce((t.e ->> 'latency_ms')::integer, 0) <= 86400000
      end, false)
  ) then
    return query
    with items as (
      select t.n, (t.e ->> 'job_id')::uuid as job_id, (t.e ->> 'attempt')::integer as attempt,
             t.e ->> 'provider' as provider, t.e ->> 'model' as model,
             coalesce((t.e ->> 'input_tokens')::integer, 0) as input_tokens,
             coalesce((t.e ->> 'output_tokens')::integer, 0) as output_tokens,
             coalesce((t.e ->> 'cached_tokens')::integer, 0) as cached_tokens,
             coalesce((t.e ->> 'images')::integer, 0) as images,
             (t.e ->> 'latency_ms')::integer as latency_ms
      from jsonb_array_elements(calls) with ordinality as t(e, n)
    ),
    priced as (
      select i.*, j.user_id, j.kind,
             -- numeric(14, 8): the ledger column's rounding, so the answer is the stored cost.
             private.usage_cost(p, i.input_tokens, i.cached_tokens, i.output_tokens, i.images)::numeric(14, 8) as cost_usd
      from items i
      cross join lateral (select j.user_id, j.kind from public.jobs j where j.id = i.job_id limit 1) j  -- a lookup each
      left join public.model_prices p on p.provider = i.provider and p.model = i.model
    ),
    recorded as (
      insert into public.usage_ledger
        (job_id, user_id, kind, attempt, worker_id, provider, model, input_tokens, output_tokens, cached_tokens,
         images, latency_ms, cost_usd)
      select r.job_id, r.user_id, r.kind, r.attempt, record_usage_items.worker_id, r.provider, r.model,
             r.input_tokens, r.output_tokens, r.cached_tokens, r.images, r.latency_ms, r.cost_usd
      from priced r
      order by r.n  -- the walk's order: ledger ids, and the jobs' key-share locks, as it takes them
    )
    select r.job_id, true, r.cost_usd, null::text from priced r order by r.n;
    return;
  end if;

  -- The JSON shape first (record_usage's own arguments are typed): keys, the job id, integers.
  for item in select e from jsonb_array_elements(calls) as t(e) loop
    perform private.check_batch_item(names[i], item, array['job_id', 'attempt', 'provider', 'model',
      'input_tokens', 'output_tokens', 'cached_tokens', 'images', 'latency_ms']);
    if coalesce(jsonb_typeof(item -> 'attempt'), 'null') = 'null' then
      perform private.raise_invalid(format('%s.attempt', names[i]), 'is required');
    end if;
    for k in select unnest(array['attempt', 'input_tokens', 'output_tokens', 'cached_tokens', 'images', 'latency_ms']) loop
      perform private.check_json_integer(format('%s.%s', names[i], k), item -> k);
    end loop;
    perform private.check_json_string(format('%s.provider', names[i]), item -> 'provider');
    perform private.check_json_string(format('%s.model', names[i]), item -> 'model');
    i := i + 1;
  end loop;

  i := 1;
  for item in select e from jsonb_array_elements(calls) as t(e) loop
    if not exists (select 1 from public.jobs j where j.id = (item ->> 'job_id')::uuid) then
      return query select (item ->> 'job_id')::uuid, false, null::numeric, 'job not found'::text;
    else
      begin
        v_row := public.record_usage(
          job_id => (item ->> 'job_id')::uuid, worker_id => record_usage_items.worker_id,
          attempt => (item ->> 'attempt')::numeric::integer, provider => item ->> 'provider', model => item ->> 'model',
          input_tokens => coalesce((item ->> 'input_tokens')::numeric::integer, 0),
          output_tokens => coalesce((item ->> 'output_tokens')::numeric::integer, 0),
          cached_tokens => coalesce((item ->> 'cached_tokens')::numeric::integer, 0),
          images => coalesce((item ->> 'images')::numeric::integer, 0),
          latency_ms => (item ->> 'latency_ms')::numeric::integer);
      exception when invalid_parameter_value then
        -- record_usage names the field; the batch names the item too. The batch records nothing.
        get stacked diagnostics v_message = message_text, v_hint = pg_exception_hint;
        raise exception '%.%', names[i], v_message using errcode = '22023', hint = v_hint;
      end;
      return query select v_row.job_id, true, v_row.cost_usd, null::text;
    end if;
    i := i + 1;
  end loop;
end;
$function$

-- function private.refuse_view_write()
CREATE OR REPLACE FUNCTION private.refuse_view_write()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  raise exception '% is a read-only view', tg_table_name
    using errcode = 'PT405', hint = 'Write through the RPC functions (enqueue_job, cancel_job, ...).';
end;
$function$

-- function private.retry_delay(integer,double precision)
CREATE OR REPLACE FUNCTION private.retry_delay(attempt integer, jitter double precision)
 RETURNS interval
 LANGUAGE sql
 IMMUTABLE
 SET search_path TO ''
AS $function$
  select make_interval(secs => base / 2 + base / 2 * greatest(0, least(1, jitter)))
  from (select least(600.0, 5.0 * power(2, greatest(attempt, 1) - 1)) as base) b
$function$

-- function private.running_cap(uuid,text)
CREATE OR REPLACE FUNCTION private.running_cap(p_user uuid, p_kind text)
 RETURNS integer
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return (select (private.kind_on_plan(p_user, k)).max_running_per_user from public.job_kinds k where k.kind = p_kind);
end;
$function$

-- function private.send_messages(text,text[],jsonb[])
CREATE OR REPLACE FUNCTION private.send_messages(p_event text, p_topics text[], p_payloads jsonb[])
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_sent integer;
begin
  if coalesce(cardinality(p_payloads), 0) = 0 then
    return 0;
  end if;
  insert into realtime.messages (id, payload, event, topic, private, extension)
  select m.id, case when m.payload ? 'id' then m.payload else jsonb_set(m.payload, '{id}', to_jsonb(m.id)) end,
         p_event, m.topic, true, 'broadcast'
  from (select gen_random_uuid() as id, p.payload, p.topic, p.ord
        from unnest(p_payloads, p_topics) with ordinality as p(payload, topic, ord)) m
  order by m.ord;
  get diagnostics v_sent = row_count;
  return v_sent;
exception
  when others then
    raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
    return 0;
end;
$function$

-- function private.store_cached_results(uuid[])
CREATE OR REPLACE FUNCTION private.store_cached_results(succeeded uuid[])
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
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
$function$

-- function private.touch_updated_at()
CREATE OR REPLACE FUNCTION private.touch_updated_at()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
  new.updated_at := clock_timestamp();
  return new;
end;
$function$

-- function private.usage_cost(public.model_prices,integer,integer,integer,integer)
CREATE OR REPLACE FUNCTION private.usage_cost(price public.model_prices, input_tokens integer, cached_tokens integer, output_tokens integer, images integer)
 RETURNS numeric
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
begin
  return ((input_tokens - cached_tokens) * price.input_usd_per_mtok
          + cached_tokens * price.cached_input_usd_per_mtok
          + output_tokens * price.output_usd_per_mtok) / 1000000
         + images * price.usd_per_image;
end;
$function$

-- function private.user_plan(uuid)
CREATE OR REPLACE FUNCTION private.user_plan(p_user uuid)
 RETURNS public.plans
 LANGUAGE plpgsql
 STABLE
 SET search_path TO ''
AS $function$
declare
  v_plan public.plans;
begin
  select p.* into v_plan from public.plans p
  where p.plan = coalesce((select up.plan from public.user_plans up where up.user_id = p_user),
                          (select d.plan from public.plans d where d.is_default));
  return v_plan;
end;
$function$

-- function private.wake_channel(text)
CREATE OR REPLACE FUNCTION private.wake_channel(worker_id text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
 SET search_path TO ''
AS $function$
begin
  return 'worker_wake_' || md5(worker_id);
end;
$function$

-- function private.wake_for_queued_jobs()
CREATE OR REPLACE FUNCTION private.wake_for_queued_jobs()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  g record;
  v_handed integer := 0;
  v_finished uuid[];
  v_succeeded uuid[];
begin
  -- Per kind, the jobs that became queued in this statement: new ones, and ones that came back
  -- or moved in time. Claims, renewals and progress find none: no lock, no wake-up
  -- (wake_parked_workers takes the gate only when it runs); a statement that finishes jobs takes
  -- the gate once, below, to see whether anybody is parked.
  if tg_op = 'INSERT' then
    for g in
      select n.kind, count(*)::integer as jobs,
             min(n.run_at) filter (where n.run_at <= now()) as due_at,
             min(n.run_at) filter (where n.run_at > now()) as next_at
      from new_rows n where n.status = 'queued' group by n.kind
    loop
      v_handed := v_handed + private.wake_parked_workers(g.kind, g.jobs, g.due_at, g.next_at);
    end loop;
    -- Then each new job's message to its user (the row trigger announces updates only), except
    -- for a job a hand-off just claimed: the client's first state is already "queued", the claim
    -- is quiet and the worker's first report announces the job running, so a job that starts at
    -- once costs one message less against the project's Realtime quota (issue 14). A job left
    -- queued (no worker parked, a user's cap, a hand-off that took an earlier job) is announced.
    perform private.send_messages('job', array_agg('jobs:' || n.user_id::text),
                                   array_agg(private.job_broadcast_payload(n::public.jobs)))
    from new_rows n
    where v_handed = 0
       or n.status <> 'queued'
       or not exists (select 1 from public.jobs j where j.id = n.id and j.status = 'running');
    return null;
  end if;
  -- A statement that leaves every row it touched running (a claim, a progress report, a lease
  -- renewal) can neither queue a job nor free a place under a cap: one pass over its new rows
  -- instead of the two joins below (bench/FIXES.md, "claims that could not wake anyone").
  if not exists (select 1 from new_rows n where n.status <> 'running') then
    return null;
  end if;
  -- What the jobs this statement finished set off, once per statement (row triggers made a
  -- PL/pgSQL call per job, and a statement trigger of their own would run for every update of
  -- jobs: bench/FIXES.md): results cached for their kind, waiting dependents moved on.
  select coalesce(array_agg(n.id) filter (where n.status = 'succeeded' and not n.cached), '{}'),
         coalesce(array_agg(n.id), '{}')
    into v_succeeded, v_finished
  from new_rows n join old_rows o on o.id = n.id
  where n.status in ('succeeded', 'failed', 'cancelled') and o.status is distinct from n.status;
  if cardinality(v_succeeded) > 0 then
    perform private.store_cached_results(v_succeeded);
  end if;
  if cardinality(v_finished) > 0 then
    perform private.advance_dependents(v_finished);
  end if;
  -- Nobody to wake: no parked worker with free slots that still counts as alive (the candidates'
  -- test of wake_parked_workers, which does nothing without one). Read after taking the gate, as
  -- wake_parked_workers reads: a claim parking right now has either committed its entry (seen
  -- here) or waits for this statement's commit and then sees its jobs. A draining worker never
  -- parks, so its acknowledgements skip the probes below (bench/FIXES.md).
  lock table private.wakeup_gate in row exclusive mode;
  if not exists (select 1 from public.worker_wakeups c
                 where c.parked_until > now() and c.free_slots > 0
                   and (c.woken_at is null or c.woken_at > now() - interval '2 seconds')) then
    return null;
  end if;
  for g in
    select n.kind, count(*)::integer as jobs,
           min(n.run_at) filter (where n.run_at <= now()) as due_at,
           min(n.run_at) filter (where n.run_at > now()) as next_at
    from new_rows n join old_rows o on o.id = n.id
    where n.status = 'queued' and (o.status <> 'queued' or o.run_at is distinct from n.run_at)
    group by n.kind
  loop
    perform private.wake_parked_workers(g.kind, g.jobs, g.due_at, g.next_at);
  end loop;
  -- A job that stops running frees a place under its user's running cap: a due job of that user
  -- and kind that waited for it is claimable now, though nothing about it changed.
  -- One index probe per (user, kind), in the queued index's order: a probe per row, planned for
  -- the transition table's unknown size, read every job of the user (bench/FIXES.md).
  for g in
    select f.kind, sum(f.jobs)::integer as jobs
    from (
      select n.user_id, n.kind, count(*) as jobs
      from new_rows n join old_rows o on o.id = n.id
      where o.status = 'running' and n.status not in ('running', 'queued')
      group by n.user_id, n.kind
    ) f
    cross join lateral (
      select 1 from public.jobs q
      where q.user_id = f.user_id and q.kind = f.kind and q.status = 'queued' and q.run_at <= now()
      order by q.priority desc, q.run_at, q.id
      limit 1
    ) due
    group by f.kind
  loop
    perform private.wake_parked_workers(g.kind, g.jobs, now(), null);
  end loop;
  return null;
end;
$function$

-- function private.wake_parked_workers(text,integer,timestamp with time zone,timestamp with time zone)
CREATE OR REPLACE FUNCTION private.wake_parked_workers(p_kind text, p_jobs integer, p_due_at timestamp with time zone, p_next_at timestamp with time zone)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  w record;
  v_payload jsonb;
  v_message jsonb;
  v_text text;
  v_quiet text;
  v_jobs jsonb;
  v_ids uuid[];
  v_handed integer;
  v_parked boolean;
  v_covered integer := 0;
  v_handed_all integer := 0;
  v_told text[] := '{}';
begin
  -- Before reading parked workers: a claim that is parking now either sees these committed jobs
  -- or has committed its entry (see the header). Taken again by a later call: a no-op.
  lock table private.wakeup_gate in row exclusive mode;
  -- The hint a worker reads: claim now (run_at due) and/or arm a timer (next_at, or run_at later).
  v_payload := jsonb_build_object('kind', p_kind, 'status', 'queued', 'run_at', coalesce(p_due_at, p_next_at))
    || case when p_due_at is not null and p_next_at is not null then jsonb_build_object('next_at', p_next_at) else '{}' end;
  -- A worker woken moments ago that has not claimed yet still has free slots promised to no job:
  -- its coming claim will see these jobs too (it takes the gate after this statement's commit),
  -- so it takes them without another message or another worker's claim. After two seconds
  -- without its claim it counts as unresponsive: new jobs wake others. It is not preferred over
  -- workers parked after it, though: a dead worker woken because nobody else was parked yet must
  -- not absorb the jobs that follow while a live worker has parked since (a job then waited for
  -- the sweep: tests/sql/test_wakeups.py).
  for w in
    with candidates as (
      select c.worker_id, c.free_slots, c.parked_at, c.woken_at is not null as woken, c.handoff_lease_seconds,
             c.wake_via
      from public.worker_wakeups c
      where c.parked_until > now() and c.free_slots > 0 and (c.kinds is null or p_kind = any(c.kinds))
        and (c.woken_at is null or c.woken_at > now() - interval '2 seconds')
      order by c.parked_at desc, c.worker_id
      limit p_jobs
      for update skip locked
    ),
    chosen as (
      -- The one parked last first, until their free slots cover the new jobs. A
      -- live worker parks again after every claim: the latest entries are the likeliest alive,
      -- and one that died sinks below them until it lapses.
      select c.*, coalesce(sum(c.free_slots) over (
        order by c.parked_at desc, c.worker_id rows between unbounded preceding and 1 preceding), 0) as before
      from candidates c
    )
    select c.worker_id, c.woken, c.handoff_lease_seconds, c.free_slots, c.parked_at, c.wake_via,
           least(c.free_slots, p_jobs - c.before)::integer as slots
    from chosen c
    where c.before < p_jobs
    order by c.parked_at desc, c.worker_id
  loop
    v_covered := v_covered + w.slots;
    v_told := v_told || w.worker_id;
    v_jobs := null;
    v_ids := '{}';
    v_handed := 0;
    v_parked := false;
    if p_due_at is not null and w.handoff_lease_seconds is not null and not w.woken then
      -- Hand-off: claim for the worker now, in this transaction, as its own claim would right
      -- after a wake-up (same function: caps, group locks, claim order), quietly (the worker
      -- announces each job). It may take an earlier due job of the kind instead of a new one.
      v_quiet := current_setting('jobs.quiet_claims', true);
      perform set_config('jobs.quiet_claims', 'on', true);
      select coalesce(jsonb_agg(to_jsonb(c)), '[]'), coalesce(array_agg(c.id), '{}'), count(*)
        into v_jobs, v_ids, v_handed
        from public.claim_jobs(worker_id => w.worker_id, kinds => array[p_kind], max_jobs => w.slots,
                               lease_seconds => w.handoff_lease_seconds) c;
      perform set_config('jobs.quiet_claims', coalesce(v_quiet, ''), true);
      v_handed_all := v_handed_all + v_handed;
      -- It stays parked (no claim owed) when the hand-off did all a claim would have: it took
      -- every job it was for, left no due job of the kind behind (one a user's cap holds back,
      -- an earlier one it took instead, the rest of a batch for the next worker: the claim
      -- takes those), and the worker keeps free slots; and only if it parked less than two
      -- seconds ago, so a worker that died while parked gets this for two seconds at most.
      -- The due-job test walks the queued index in claim order (a scalar subquery: EXISTS would
      -- drop the ORDER BY), so it reads queued jobs at most, never the table's history: as EXISTS,
      -- a generic plan read the whole table and a custom one a whole index (issue 14).
      v_parked := v_handed = w.slots and w.free_slots > v_handed and w.parked_at > now() - interval '2 seconds'
        and (select q.id from public.jobs q where q.status = 'queued' and q.kind = p_kind and q.run_at <= now()
             order by q.priority desc, q.run_at, q.id limit 1) is null;
    end if;
    if not w.woken then
      -- The rows as one JSON text, not as nested JSON: supabase-py's Realtime client checks every
      -- node of a broadcast against a union of nine message models (0.64 ms for one 5 KB row,
      -- 0.09 ms for the same row as a string, then json.loads; bench/FIXES.md).
      v_message := v_payload
        || case when v_handed > 0 then jsonb_build_object('jobs', v_jobs::text) else '{}' end
        || case when v_parked then jsonb_build_object('parked', true) else '{}' end;
      v_text := v_message::text;
      if octet_length(v_text) >= 8000 then
        -- NOTIFY takes less than 8,000 bytes: a longer message goes without its rows, and the
        -- worker's claim returns them (handed, not in handed_seen).
        v_message := v_payload;
        v_text := v_payload::text;
        v_parked := false;
      end if;
    end if;
    -- Unless it stays parked, the worker is now woken: it claims once more (after this
    -- commit), which parks it again with the slots it really has free, takes what a hand-off
    -- could not and whatever is queued meanwhile for the slots promised here, and shows it is
    -- alive: a worker that does not claim within two seconds gets nothing more (it may have
    -- died while parked).
    update public.worker_wakeups d
    set woken_at = case when v_parked then d.woken_at else coalesce(d.woken_at, now()) end,
        free_slots = d.free_slots - w.slots,
        handed = d.handed || v_ids
    where d.worker_id = w.worker_id;
    continue when w.woken;  -- already told
    if w.wake_via is distinct from 'notify' then
      perform realtime.send(v_message, 'wake', 'worker:' || w.worker_id, true);
    end if;
    if w.wake_via is distinct from 'realtime' then
      perform pg_notify(private.wake_channel(w.worker_id), v_text);
    end if;
  end loop;
  if v_covered < p_jobs then
    -- Every parked worker this statement could lock is taken. Any other one is locked by a
    -- statement waking it right now, which cannot see these jobs (not committed) and may keep
    -- it parked: wake it to claim, without its entry. Its claim waits at the gate for this
    -- statement's commit, so it sees the jobs (before hand-offs could keep a worker parked, its
    -- claim after every message covered this). The same test of an entry as the candidates'
    -- above, written out: a helper function would cost a call per row of every enqueue.
    for w in
      select c.worker_id, c.wake_via from public.worker_wakeups c
      where c.parked_until > now() and c.free_slots > 0 and (c.kinds is null or p_kind = any(c.kinds))
        and (c.woken_at is null or c.woken_at > now() - interval '2 seconds') and c.worker_id <> all(v_told)
      order by c.parked_at desc, c.worker_id
      limit p_jobs - v_covered
    loop
      if w.wake_via is distinct from 'notify' then
        perform realtime.send(v_payload, 'wake', 'worker:' || w.worker_id, true);
      end if;
      if w.wake_via is distinct from 'realtime' then
        perform pg_notify(private.wake_channel(w.worker_id), v_payload::text);
      end if;
    end loop;
  end if;
  return v_handed_all;
end;
$function$

-- function public.ack_artifact_deletions(bigint[])
CREATE OR REPLACE FUNCTION public.ack_artifact_deletions(ids bigint[])
 RETURNS TABLE(id bigint, acknowledged boolean, reason text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$

-- function public.acquire_model_capacity(text,text,integer)
CREATE OR REPLACE FUNCTION public.acquire_model_capacity(provider text, model text, tokens integer DEFAULT 0)
 RETURNS TABLE(granted boolean, wait_seconds double precision, reason text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_now timestamptz := clock_timestamp();
  v_limits public.provider_limits;
  v_state public.model_capacity;
  v_cooldown_until timestamptz;
  v_requests double precision;
  v_tokens double precision;
  v_need double precision;
  v_wait double precision := 0;
  v_reason text := 'granted';
begin
  perform private.check_provider_model(provider, model);
  if tokens is null or tokens not between 0 and 1000000000 then
    perform private.raise_invalid('tokens', format('must be between 0 and 1000000000, got %s', coalesce(tokens::text, 'null')));
  end if;

  select * into v_limits from public.provider_limits l where l.provider = $1 and l.model = $2;
  if not found then
    select c.cooldown_until into v_cooldown_until from public.model_capacity c
     where c.provider = $1 and c.model = $2;
    if v_cooldown_until > v_now then
      return query select false, extract(epoch from v_cooldown_until - v_now)::double precision, 'cooldown'::text;
    else
      return query select true, 0::double precision, 'unlimited'::text;
    end if;
    return;
  end if;
  insert into public.model_capacity as c (provider, model, requests_left, tokens_left, refilled_at)
  values ($1, $2, coalesce(v_limits.requests_per_minute, 0), coalesce(v_limits.tokens_per_minute, 0), v_now)
  on conflict on constraint model_capacity_pkey do nothing;
  -- The row lock serializes every replica asking for this provider/model until commit.
  select * into strict v_state from public.model_capacity c where c.provider = $1 and c.model = $2 for update;
  v_now := clock_timestamp();

  if v_state.cooldown_until > v_now then
    return query select false, extract(epoch from v_state.cooldown_until - v_now)::double precision, 'cooldown'::text;
    return;
  end if;

  -- Refill both buckets for the time since the last call, up to one minute's worth.
  v_requests := v_state.requests_left;
  v_tokens := v_state.tokens_left;
  if v_limits.requests_per_minute is not null then
    v_requests := least(v_limits.requests_per_minute::double precision,
      v_requests + greatest(0, extract(epoch from v_now - v_state.refilled_at)) * v_limits.requests_per_minute / 60.0);
    if v_requests < 1 then
      v_wait := (1 - v_requests) * 60.0 / v_limits.requests_per_minute;
      v_reason := 'requests';
    end if;
  end if;
  if v_limits.tokens_per_minute is not null then
    v_tokens := least(v_limits.tokens_per_minute::double precision,
      v_tokens + greatest(0, extract(epoch from v_now - v_state.refilled_at)) * v_limits.tokens_per_minute / 60.0);
    -- A request larger than the whole budget waits for a full bucket rather than forever.
    v_need := least(tokens, v_limits.tokens_per_minute);
    if v_tokens < v_need and (v_need - v_tokens) * 60.0 / v_limits.tokens_per_minute > v_wait then
      v_wait := (v_need - v_tokens) * 60.0 / v_limits.tokens_per_minute;
      v_reason := 'tokens';
    end if;
  end if;

  if v_reason = 'granted' then
    if v_limits.requests_per_minute is not null then
      v_requests := v_requests - 1;
    end if;
    if v_limits.tokens_per_minute is not null then
      v_tokens := v_tokens - v_need;
    end if;
  end if;
  update public.model_capacity c
     set requests_left = v_requests, tokens_left = v_tokens, refilled_at = v_now
   where c.provider = $1 and c.model = $2;
  return query select v_reason = 'granted', v_wait, v_reason;
end;
$function$

-- function public.acquire_model_capacity_batch(jsonb)
CREATE OR REPLACE FUNCTION public.acquire_model_capacity_batch(requests jsonb)
 RETURNS TABLE(item integer, granted boolean, wait_seconds double precision, reason text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
#variable_conflict use_column
declare
  r record;
  i integer := 0;
  v_answer record;
  v_items integer[] := '{}';
  v_granted boolean[] := '{}';
  v_waits double precision[] := '{}';
  v_reasons text[] := '{}';
  v_message text;
  v_hint text;
begin
  perform private.check_batch('requests', requests, '{"provider", "model", "tokens"}');
  -- The JSON shape first (acquire_model_capacity's own arguments are typed).
  for r in select e from jsonb_array_elements(requests) as t(e) loop
    perform private.check_batch_object(format('requests[%s]', i), r.e, array['provider', 'model', 'tokens']);
    perform private.check_json_string(format('requests[%s].provider', i), r.e -> 'provider');
    perform private.check_json_string(format('requests[%s].model', i), r.e -> 'model');
    perform private.check_json_integer(format('requests[%s].tokens', i), r.e -> 'tokens');
    i := i + 1;
  end loop;

  for r in
    select t.e, (t.n - 1)::integer as n
      from jsonb_array_elements(requests) with ordinality as t(e, n)
     order by t.e ->> 'provider', t.e ->> 'model', t.n
  loop
    begin
      select * into strict v_answer from public.acquire_model_capacity(
        provider => r.e ->> 'provider', model => r.e ->> 'model',
        tokens => coalesce((r.e ->> 'tokens')::numeric::integer, 0));
    exception when invalid_parameter_value then
      -- acquire_model_capacity names the field; the batch names the item too, and takes nothing.
      get stacked diagnostics v_message = message_text, v_hint = pg_exception_hint;
      raise exception 'requests[%].%', r.n, v_message using errcode = '22023', hint = v_hint;
    end;
    v_items := v_items || r.n;
    v_granted := v_granted || v_answer.granted;
    v_waits := v_waits || v_answer.wait_seconds;
    v_reasons := v_reasons || v_answer.reason;
  end loop;

  return query
    select a.item, a.granted, a.wait_seconds, a.reason
      from unnest(v_items, v_granted, v_waits, v_reasons) as a(item, granted, wait_seconds, reason)
     order by a.item;
end;
$function$

-- function public.cancel_job(uuid)
CREATE OR REPLACE FUNCTION public.cancel_job(job_id uuid)
 RETURNS public.jobs
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_uid uuid := auth.uid();
  j public.jobs;
begin
  if v_uid is null then
    raise exception 'cancel_job: no signed-in user in the request' using errcode = '42501';
  end if;
  if job_id is null then
    perform private.raise_invalid('job_id', 'must not be null');
  end if;
  select * into j from public.jobs where id = cancel_job.job_id and user_id = v_uid for update;
  if not found then
    raise exception 'job_id: job % not found', cancel_job.job_id using errcode = 'PT404';
  end if;

  if j.status in ('queued', 'waiting') then
    update public.jobs
    set status = 'cancelled', cancel_requested = true, finished_at = now(), lease_expires_at = null,
        error = jsonb_build_object('type', 'cancelled', 'message', 'cancelled by the user',
                                   'retryable', false, 'attempt', attempts)
    where id = j.id
    returning * into j;
  elsif j.status = 'running' then
    -- The worker sees the flag on its next heartbeat, stops, and records the cancellation.
    if not j.cancel_requested then
      update public.jobs set cancel_requested = true where id = j.id returning * into j;
    end if;
  elsif j.status in ('succeeded', 'failed') then
    raise exception 'job_id: job % already %; nothing to cancel', j.id, j.status using errcode = 'PT409';
  end if;
  return j;  -- cancelling a cancelled job is a no-op
end;
$function$

-- function public.claim_artifact_deletions(integer,integer)
CREATE OR REPLACE FUNCTION public.claim_artifact_deletions(max_items integer DEFAULT 100, lease_seconds integer DEFAULT 300)
 RETURNS SETOF public.artifact_deletions
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$

-- function public.claim_jobs(text,text[],integer,integer)
CREATE OR REPLACE FUNCTION public.claim_jobs(worker_id text, kinds text[] DEFAULT NULL::text[], max_jobs integer DEFAULT 1, lease_seconds integer DEFAULT 60)
 RETURNS SETOF public.jobs
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET cursor_tuple_fraction TO '0.001'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
declare
  v_users uuid[] := '{}';
  v_kinds text[] := '{}';
  v_ids uuid[] := '{}';
  v_group uuid[];
  v_planned integer := 0;
  v_locked_any boolean := false;
  v_waiting_user uuid;
  v_waiting_kind text;
  v_cap integer;
  v_running integer;
  v_due_jobs refcursor;
  v_read integer := 0;
  v_cut boolean := false;
  g record;
begin
  perform private.check_worker_id(worker_id);
  perform private.check_lease_seconds(lease_seconds);
  if max_jobs is null or max_jobs not between 1 and 1000 then
    perform private.raise_invalid('max_jobs', format('must be between 1 and 1000, got %s', coalesce(max_jobs::text, 'null')));
  end if;
  perform private.check_kinds('kinds', kinds);

  -- Plan: one decision per (user, kind) group, in the order of each group's first due job (its
  -- head, in claim order). Usually the first few due jobs name enough groups: walk due jobs in
  -- claim order (index order, read lazily), at most 256 of them. Only if those did not fill the
  -- claim (groups at their running cap with long queues), list every group that has due jobs by
  -- its head: a skip scan of the queued index, O(groups), never O(queue) (a walk over all due
  -- jobs took 120 ms with 20,000 queued behind capped users: bench/FIXES.md). Groups of the first
  -- pass come first in both, and are skipped the second time.
  open v_due_jobs for
    select j.user_id, j.kind
    from public.jobs j
    where j.status = 'queued' and j.run_at <= now() and (claim_jobs.kinds is null or j.kind = any(claim_jobs.kinds))
    order by j.priority desc, j.run_at, j.id;
  for v_pass in 1 .. 2 loop
    loop
      exit when v_planned >= max_jobs;
      fetch v_due_jobs into g;
      exit when not found;
      v_read := v_read + 1;
      if v_pass = 1 and v_read > 256 then
        v_cut := true;
        exit;
      end if;
      -- A group seen before in this walk (the second pass lists each group once, without those).
      continue when (v_pass = 1 and exists (select 1 from unnest(v_users, v_kinds) p(u, k) where p.u = g.user_id and p.k = g.kind))
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
      v_group := private.claimable_jobs(g.user_id, g.kind, least(v_cap - v_running, max_jobs - v_planned));
      v_users := v_users || g.user_id;
      v_kinds := v_kinds || g.kind;
      v_ids := v_ids || v_group;
      v_planned := v_planned + cardinality(v_group);
    end loop;
    close v_due_jobs;
    exit when v_pass = 2 or not v_cut or v_planned >= max_jobs;
    open v_due_jobs for
      with recursive groups as (
        (select j.user_id, j.kind from public.jobs j where j.status = 'queued' order by j.user_id, j.kind limit 1)
        union all
        select n.user_id, n.kind
        from groups
        cross join lateral (
          select j.user_id, j.kind from public.jobs j
          where j.status = 'queued' and (j.user_id, j.kind) > (groups.user_id, groups.kind)
          order by j.user_id, j.kind
          limit 1
        ) n
      )
      select gr.user_id, gr.kind
      from groups gr
      cross join lateral (
        select j.priority, j.run_at, j.id from public.jobs j
        where j.user_id = gr.user_id and j.kind = gr.kind and j.status = 'queued' and j.run_at <= now()
        order by j.priority desc, j.run_at, j.id
        limit 1
      ) h
      where (claim_jobs.kinds is null or gr.kind = any(claim_jobs.kinds))
        and not exists (select 1 from unnest(v_users, v_kinds) p(u, k) where p.u = gr.user_id and p.k = gr.kind)
      order by h.priority desc, h.run_at, h.id;
  end loop;

  if not v_locked_any and v_waiting_user is not null then
    -- Everything due is being claimed by others right now: wait for the first group, then plan it.
    perform pg_advisory_xact_lock(private.lock_class('claim_group'), private.group_key(v_waiting_user, v_waiting_kind));
    v_cap := private.running_cap(v_waiting_user, v_waiting_kind);
    select count(*) into v_running from public.jobs r
      where r.status = 'running' and r.user_id = v_waiting_user and r.kind = v_waiting_kind;
    v_ids := private.claimable_jobs(v_waiting_user, v_waiting_kind, least(v_cap - v_running, max_jobs));
  end if;

  return query
  with locked as (
    -- The jobs chosen above, by primary key: their groups are locked by this transaction, so no
    -- other claim takes them meanwhile; a job cancelled or deferred since is left out.
    select j.id from public.jobs j
    where j.id = any(v_ids) and j.status = 'queued' and j.run_at <= now()
    for update skip locked
  ),
  claimed as (
    update public.jobs j
    set status = 'running',
        worker_id = claim_jobs.worker_id,
        attempts = j.attempts + 1,
        lease_expires_at = now() + make_interval(secs => lease_seconds),
        started_at = now(),
        updated_at = clock_timestamp()  -- set here, so jobs_touch_updated_at is skipped
    from locked
    where j.id = locked.id
    returning j.*
  )
  select * from claimed c order by c.priority desc, c.run_at, c.id;
end;
$function$

-- function public.claim_jobs_or_park(text,text[],integer,integer,integer,boolean,uuid[],text)
CREATE OR REPLACE FUNCTION public.claim_jobs_or_park(worker_id text, kinds text[] DEFAULT NULL::text[], max_jobs integer DEFAULT 1, lease_seconds integer DEFAULT 60, park_seconds integer DEFAULT 60, handoffs boolean DEFAULT false, handed_seen uuid[] DEFAULT NULL::uuid[], wake_via text DEFAULT NULL::text)
 RETURNS SETOF public.jobs
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_claimed integer := 0;
  v_held integer := 0;
  v_unseen uuid[];
begin
  perform private.check_worker_id(worker_id);
  if park_seconds is null or park_seconds not between 1 and 86400 then
    perform private.raise_invalid('park_seconds',
      format('must be between 1 and 86400, got %s', coalesce(park_seconds::text, 'null')));
  end if;
  if handoffs is null then
    perform private.raise_invalid('handoffs', 'must be true or false, got null');
  end if;
  perform private.check_array('handed_seen', handed_seen, 1000);
  if wake_via not in ('realtime', 'notify') then
    perform private.raise_invalid('wake_via', format('must be "realtime", "notify" or null (both), got "%s"', wake_via));
  end if;
  lock table private.wakeup_gate in share mode;
  -- Jobs handed to this worker since its last claim whose message it has not seen (lost with a
  -- dropped connection, trimmed for size, or still on its way): they are its jobs already, so
  -- they come first and fill the slots it asks for. The gate orders this read against every
  -- hand-off: one committed before is listed here, one after finds the new entry.
  select coalesce(array_agg(h.id), '{}') into v_unseen
  from public.worker_wakeups w cross join lateral unnest(w.handed) h(id)
  where w.worker_id = claim_jobs_or_park.worker_id and h.id <> all(coalesce(handed_seen, '{}'));
  if cardinality(v_unseen) > 0 then
    return query select * from public.jobs j
      where j.id = any(v_unseen) and j.status = 'running' and j.worker_id = claim_jobs_or_park.worker_id
      order by j.priority desc, j.run_at, j.id;
    get diagnostics v_held = row_count;
  end if;
  if v_held < max_jobs or max_jobs is null then
    -- claim_jobs checks the other arguments; its error aborts the call before anything is parked.
    -- The claim is quiet (broadcast_job_change): the worker announces each job with its first report.
    perform set_config('jobs.quiet_claims', 'on', true);
    return query select * from public.claim_jobs(
      worker_id => claim_jobs_or_park.worker_id, kinds => kinds, max_jobs => max_jobs - v_held, lease_seconds => lease_seconds);
    get diagnostics v_claimed = row_count;
    perform set_config('jobs.quiet_claims', '', true);
  else
    -- Handed jobs filled the claim: the arguments are checked all the same.
    perform private.check_lease_seconds(lease_seconds);
    if max_jobs not between 1 and 1000 then
      perform private.raise_invalid('max_jobs', format('must be between 1 and 1000, got %s', max_jobs));
    end if;
    perform private.check_kinds('kinds', kinds);
  end if;
  v_claimed := v_claimed + v_held;
  if v_claimed < max_jobs then
    insert into public.worker_wakeups as w
      (worker_id, kinds, free_slots, parked_at, parked_until, handoff_lease_seconds, wake_via)
    values (claim_jobs_or_park.worker_id, kinds, max_jobs - v_claimed, now(), now() + make_interval(secs => park_seconds),
            case when handoffs then lease_seconds end, claim_jobs_or_park.wake_via)
    on conflict on constraint worker_wakeups_pkey do update
      set kinds = excluded.kinds, free_slots = excluded.free_slots,
          parked_at = excluded.parked_at, parked_until = excluded.parked_until, woken_at = null,
          handoff_lease_seconds = excluded.handoff_lease_seconds, handed = '{}', wake_via = excluded.wake_via;
  else
    delete from public.worker_wakeups w where w.worker_id = claim_jobs_or_park.worker_id;
  end if;
  -- Entries of workers that stopped renewing them: the table stays as small as the fleet.
  -- (A woken entry is kept until its worker claims: it still counts its promised slots.)
  delete from public.worker_wakeups w where w.parked_until < now() - interval '1 hour';
end;
$function$

-- function public.complete_and_claim(text,jsonb,text[],integer,integer)
CREATE OR REPLACE FUNCTION public.complete_and_claim(worker_id text, completions jsonb, kinds text[] DEFAULT NULL::text[], max_jobs integer DEFAULT 1, lease_seconds integer DEFAULT 60)
 RETURNS TABLE(entry text, job_id uuid, completed boolean, reason text, job text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  -- Checked before any work, so a bad claim argument costs no acknowledgement work; claim_jobs
  -- checks them again (cheap) and stays the definition.
  perform private.check_worker_id(complete_and_claim.worker_id);
  perform private.check_lease_seconds(complete_and_claim.lease_seconds);
  if complete_and_claim.max_jobs is null or complete_and_claim.max_jobs not between 1 and 1000 then
    perform private.raise_invalid('max_jobs',
      format('must be between 1 and 1000, got %s', coalesce(complete_and_claim.max_jobs::text, 'null')));
  end if;
  perform private.check_kinds('kinds', complete_and_claim.kinds);

  return query
  select 'completed'::text, c.job_id, c.completed, c.reason, null::text
  from public.complete_jobs(complete_and_claim.worker_id, complete_and_claim.completions) as c;

  -- A quiet claim, as claim_jobs_or_park's: the worker announces each job with its first report.
  perform set_config('jobs.quiet_claims', 'on', true);
  return query
  select 'claimed'::text, j.id, null::boolean, null::text, to_jsonb(j)::text
  from public.claim_jobs(complete_and_claim.worker_id, complete_and_claim.kinds, complete_and_claim.max_jobs,
                         complete_and_claim.lease_seconds) as j;
  perform set_config('jobs.quiet_claims', '', true);
end;
$function$

-- function public.complete_job(uuid,text,jsonb)
CREATE OR REPLACE FUNCTION public.complete_job(job_id uuid, worker_id text, result jsonb)
 RETURNS public.jobs
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  j public.jobs;
begin
  if result is null or jsonb_typeof(result) not in ('object', 'array') then
    perform private.raise_invalid('result', format('must be a JSON object or array, got %s', coalesce(jsonb_typeof(result), 'null')));
  end if;
  if octet_length(result::text) > 1048576 then
    perform private.raise_invalid('result', format('%s bytes exceeds 1 MiB; store large outputs in Storage', octet_length(result::text)));
  end if;
  j := private.held_job('complete_job', job_id, worker_id);
  update public.jobs
  set status = 'succeeded', result = complete_job.result, finished_at = now(), lease_expires_at = null,
      error = null, progress = jsonb_build_object('percent', 100, 'message', coalesce(progress ->> 'message', 'done'))
  where id = j.id
  returning * into j;
  return j;
end;
$function$

-- function public.complete_jobs(text,jsonb)
CREATE OR REPLACE FUNCTION public.complete_jobs(worker_id text, completions jsonb)
 RETURNS TABLE(job_id uuid, completed boolean, reason text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
#variable_conflict use_column
declare
  n integer;
  item jsonb;
  i integer := 0;
  k text;
  v_result jsonb;
  v_done uuid[];
  v_steps jsonb;
  v_sent integer;
  v_calls jsonb := '[]';
  v_names text[] := '{}';
  u integer;
begin
  perform private.check_worker_id(complete_jobs.worker_id);
  perform private.check_batch('completions', completions, '{"job_id", "result"}');
  n := jsonb_array_length(completions);
  -- A call whose items all carry only a job_id, a result and maybe usage (a list of objects
  -- without a job_id), all well-formed, is checked in this one statement and its usage records
  -- gathered in the next; any other call walks its items below, which accepts exactly these,
  -- gathers the same records and names the first fault (one by one, ~30 µs an item:
  -- bench/FIXES.md; every AI job's success carries usage).
  if exists (
    select 1 from jsonb_array_elements(completions) as t(e)
    where case when jsonb_typeof(e) <> 'object' then true
               else (e - '{job_id,result,usage}'::text[]) <> '{}'::jsonb
                 or jsonb_typeof(e -> 'job_id') is distinct from 'string'
                 or (e ->> 'job_id') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                 or coalesce(jsonb_typeof(e -> 'result'), 'null') not in ('object', 'array')
                 or octet_length((e -> 'result')::text) > 1048576
                 or coalesce(jsonb_typeof(e -> 'usage'), 'null') not in ('null', 'array')
                 or case when jsonb_typeof(e -> 'usage') = 'array' then exists (
                       select 1 from jsonb_array_elements(e -> 'usage') as u(c)
                       where jsonb_typeof(u.c) <> 'object' or u.c ? 'job_id') else false end end
  ) then
    for item in select e from jsonb_array_elements(completions) as t(e) loop
      perform private.check_batch_item(format('completions[%s]', i), item, array['job_id', 'result', 'progress', 'usage']);
      if coalesce(jsonb_typeof(item -> 'usage'), 'null') <> 'null' then
        if jsonb_typeof(item -> 'usage') <> 'array' then
          perform private.raise_invalid(format('completions[%s].usage', i),
            format('must be a JSON array of model calls, got %s', jsonb_typeof(item -> 'usage')));
        end if;
        for u in 0 .. jsonb_array_length(item -> 'usage') - 1 loop
          if jsonb_typeof(item -> 'usage' -> u) = 'object' and item -> 'usage' -> u ? 'job_id' then
            perform private.raise_invalid(format('completions[%s].usage[%s]', i, u), 'must not name a job_id: it is the completion''s');
          end if;
          v_calls := v_calls || jsonb_build_array(
            case when jsonb_typeof(item -> 'usage' -> u) = 'object'
                 then (item -> 'usage' -> u) || jsonb_build_object('job_id', item -> 'job_id')
                 else item -> 'usage' -> u end);
          v_names := v_names || format('completions[%s].usage[%s]', i, u);
        end loop;
      end if;
      v_result := item -> 'result';
      if v_result is null or jsonb_typeof(v_result) not in ('object', 'array') then
        perform private.raise_invalid(format('completions[%s].result', i),
          format('must be a JSON object or array, got %s', coalesce(jsonb_typeof(v_result), 'nothing')));
      end if;
      if octet_length(v_result::text) > 1048576 then
        perform private.raise_invalid(format('completions[%s].result', i),
          format('%s bytes exceeds 1 MiB; store large outputs in Storage', octet_length(v_result::text)));
      end if;
      if item ? 'progress' and jsonb_typeof(item -> 'progress') <> 'null' then
        if jsonb_typeof(item -> 'progress') <> 'object' then
          perform private.raise_invalid(format('completions[%s].progress', i),
            format('must be an object with percent and/or message, got %s', jsonb_typeof(item -> 'progress')));
        end if;
        for k in select jsonb_object_keys(item -> 'progress') loop
          if k not in ('percent', 'message') then
            perform private.raise_invalid(format('completions[%s].progress', i), format('unknown key "%s"; allowed: percent, message', k));
          end if;
        end loop;
        perform private.check_progress_fields(format('completions[%s].progress', i), item -> 'progress');
      end if;
      i := i + 1;
    end loop;
  else
    -- The records the walk would gather, in its order and with its names.
    select coalesce(jsonb_agg(u.c || jsonb_build_object('job_id', t.e -> 'job_id') order by t.n, u.m), '[]'),
           coalesce(array_agg(format('completions[%s].usage[%s]', t.n - 1, u.m - 1) order by t.n, u.m), '{}')
    into v_calls, v_names
    from jsonb_array_elements(completions) with ordinality as t(e, n)
    cross join lateral jsonb_array_elements(
      case when jsonb_typeof(t.e -> 'usage') = 'array' then t.e -> 'usage' else '[]'::jsonb end) with ordinality as u(c, m);
  end if;
  if (select count(distinct (e ->> 'job_id')::uuid) from jsonb_array_elements(completions) as t(e)) <> n then
    perform private.raise_invalid('completions', 'lists a job_id more than once');
  end if;
  if jsonb_array_length(v_calls) > 1000 then
    perform private.raise_invalid('completions', format('carry %s usage records; at most 1000 in one call', jsonb_array_length(v_calls)));
  end if;

  v_done := private.lock_held_jobs(
    array(select (e ->> 'job_id')::uuid from jsonb_array_elements(completions) as t(e)), complete_jobs.worker_id);
  -- Usage after the rows are locked (all listed jobs, in id order), so recording adds no lock
  -- another transaction could be waiting for in a different order.
  if jsonb_array_length(v_calls) > 0 then
    perform from private.record_usage_items(complete_jobs.worker_id, v_calls, v_names);
  end if;
  perform private.quiet_broadcasts(v_done);

  -- The last progress, as an event (the client's history) and as the row's message.
  with steps as (
    select j.id, j.user_id, private.next_progress(j.progress, e -> 'progress') as progress
    from jsonb_array_elements(completions) as t(e)
    join public.jobs j on j.id = (e ->> 'job_id')::uuid
    where j.id = any(v_done) and coalesce(e #>> '{progress,percent}', e #>> '{progress,message}') is not null
  ),
  logged as (
    insert into public.job_events (job_id, user_id, type, data)
    select steps.id, steps.user_id, 'progress', steps.progress from steps
    returning job_events.job_id, private.job_event_payload(job_events) as payload
  )
  select coalesce(jsonb_object_agg(l.job_id::text, l.payload), '{}')
  into v_steps from logged l;

  with done as (
    update public.jobs j
    set status = 'succeeded', result = t.e -> 'result', finished_at = now(), lease_expires_at = null, error = null,
        updated_at = clock_timestamp(),  -- set here, so jobs_touch_updated_at is skipped
        progress = jsonb_build_object('percent', 100,
                                      'message', coalesce(v_steps #>> array[j.id::text, 'data', 'message'],
                                                          j.progress ->> 'message', 'done'))
    from jsonb_array_elements(completions) as t(e)
    where j.id = (t.e ->> 'job_id')::uuid and j.id = any(v_done)
    returning j
  )
  select private.send_messages('job',
           array_agg('jobs:' || (d.j).user_id::text order by (d.j).id),
           array_agg(private.job_message(d.j, case when v_steps ? (d.j).id::text
                                                   then jsonb_build_array(v_steps -> (d.j).id::text) end)
                     order by (d.j).id))
  into v_sent from done d;
  perform private.quiet_broadcasts(null);

  return query
  with input as (
    select (e ->> 'job_id')::uuid as id, ord from jsonb_array_elements(completions) with ordinality as t(e, ord)
  )
  select input.id, input.id = any(v_done),
         -- A lookup per refused item only: a join was planned as a scan of the whole table.
         case when input.id = any(v_done) then null
              else private.not_held_reason((select j from public.jobs j where j.id = input.id), complete_jobs.worker_id) end
  from input
  order by input.ord;
end;
$function$

-- function public.defer_job(uuid,text,timestamp with time zone,text)
CREATE OR REPLACE FUNCTION public.defer_job(job_id uuid, worker_id text, run_at timestamp with time zone, reason text)
 RETURNS public.jobs
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  j public.jobs;
begin
  if run_at is null then
    perform private.raise_invalid('run_at', 'must not be null');
  end if;
  perform private.check_timestamp('run_at', run_at, interval '1 day', interval '1 day');
  if reason is null or length(btrim(reason)) = 0 or length(reason) > 500 then
    perform private.raise_invalid('reason', 'must be a non-empty string of at most 500 characters');
  end if;
  j := private.held_job('defer_job', job_id, worker_id);
  if j.cancel_requested then
    update public.jobs
    set status = 'cancelled', finished_at = now(), lease_expires_at = null,
        error = jsonb_build_object('type', 'cancelled', 'message', 'cancelled by the user', 'retryable', false, 'attempt', attempts)
    where id = j.id returning * into j;
    return j;
  end if;
  -- A provider rate limit is not the job's fault: the attempt is given back.
  update public.jobs
  set status = 'queued', attempts = greatest(0, attempts - 1), lease_expires_at = null, worker_id = null,
      run_at = greatest(defer_job.run_at, now()),
      progress = jsonb_build_object('percent', progress -> 'percent', 'message', 'waiting: ' || reason)
  where id = j.id returning * into j;
  insert into public.job_events (job_id, user_id, type, data)
  values (j.id, j.user_id, 'log', jsonb_build_object('event', 'deferred', 'reason', reason, 'run_at', j.run_at));
  return j;
end;
$function$

-- function public.enqueue_job(text,jsonb,text,integer,timestamp with time zone,uuid,boolean)
CREATE OR REPLACE FUNCTION public.enqueue_job(kind text, payload jsonb DEFAULT '{}'::jsonb, idempotency_key text DEFAULT NULL::text, priority integer DEFAULT NULL::integer, run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, depends_on uuid DEFAULT NULL::uuid, cache boolean DEFAULT true)
 RETURNS public.jobs
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
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
$function$

-- function public.enqueue_orphaned_artifacts(interval,integer)
CREATE OR REPLACE FUNCTION public.enqueue_orphaned_artifacts(grace interval DEFAULT '1 day'::interval, max_items integer DEFAULT 1000)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$

-- function public.fail_job(uuid,text,jsonb,boolean)
CREATE OR REPLACE FUNCTION public.fail_job(job_id uuid, worker_id text, error jsonb, retryable boolean DEFAULT true)
 RETURNS public.jobs
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  j public.jobs;
  v_error jsonb;
begin
  if error is null or jsonb_typeof(error) <> 'object' then
    perform private.raise_invalid('error', format('must be a JSON object, got %s', coalesce(jsonb_typeof(error), 'null')));
  end if;
  if jsonb_typeof(error -> 'message') is distinct from 'string' or length(error ->> 'message') = 0 then
    perform private.raise_invalid('error', 'must have a non-empty "message" string');
  end if;
  if octet_length(error::text) > 16384 then
    perform private.raise_invalid('error', format('%s bytes exceeds 16384', octet_length(error::text)));
  end if;
  if retryable is null then
    perform private.raise_invalid('retryable', 'must not be null');
  end if;
  j := private.held_job('fail_job', job_id, worker_id);
  v_error := error || jsonb_build_object(
    'type', coalesce(error ->> 'type', 'error'),
    'retryable', retryable,
    'attempt', j.attempts);

  if j.cancel_requested then
    update public.jobs
    set status = 'cancelled', error = v_error, finished_at = now(), lease_expires_at = null
    where id = j.id returning * into j;
  elsif retryable and j.attempts < j.max_attempts then
    update public.jobs
    set status = 'queued', error = v_error, lease_expires_at = null, worker_id = null,
        run_at = now() + private.retry_delay(j.attempts, random())
    where id = j.id returning * into j;
  else
    update public.jobs
    set status = 'failed', error = v_error, finished_at = now(), lease_expires_at = null
    where id = j.id returning * into j;
  end if;
  return j;
end;
$function$

-- function public.next_job_run_at(text[])
CREATE OR REPLACE FUNCTION public.next_job_run_at(kinds text[] DEFAULT NULL::text[])
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  perform private.check_kinds('kinds', kinds);
  return (
    select min(j.run_at)
    from public.jobs j
    where j.status = 'queued' and j.run_at > now() and (next_job_run_at.kinds is null or j.kind = any(next_job_run_at.kinds))
  );
end;
$function$

-- function public.purge_finished_jobs(interval)
CREATE OR REPLACE FUNCTION public.purge_finished_jobs(older_than interval DEFAULT '7 days'::interval)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$

-- function public.reap_expired_leases()
CREATE OR REPLACE FUNCTION public.reap_expired_leases()
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_count integer;
begin
  -- A lease that ran out means the worker died or stalled: the attempt counts (it was taken at
  -- claim time); retry with backoff if attempts remain, otherwise fail.
  with expired as (
    select j.id from public.jobs j
    where j.status = 'running' and j.lease_expires_at < now()
    for update skip locked
  ),
  reaped as (
    update public.jobs j
    set status = case
          when j.cancel_requested then 'cancelled'
          when j.attempts < j.max_attempts then 'queued'
          else 'failed' end,
        error = jsonb_build_object(
          'type', 'lease_expired',
          'message', format('worker "%s" lost its lease (expired %s)', j.worker_id, j.lease_expires_at),
          'retryable', j.attempts < j.max_attempts,
          'attempt', j.attempts),
        run_at = case when j.attempts < j.max_attempts then now() + private.retry_delay(j.attempts, random()) else j.run_at end,
        finished_at = case when j.cancel_requested or j.attempts >= j.max_attempts then now() end,
        worker_id = case when j.cancel_requested or j.attempts >= j.max_attempts then j.worker_id end,
        lease_expires_at = null
    from expired where j.id = expired.id
    returning j.id
  )
  select count(*) into v_count from reaped;
  return v_count;
end;
$function$

-- function public.record_usage(uuid,text,integer,text,text,integer,integer,integer,integer,integer)
CREATE OR REPLACE FUNCTION public.record_usage(job_id uuid, worker_id text, attempt integer, provider text, model text, input_tokens integer DEFAULT 0, output_tokens integer DEFAULT 0, cached_tokens integer DEFAULT 0, images integer DEFAULT 0, latency_ms integer DEFAULT NULL::integer)
 RETURNS public.usage_ledger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$

-- function public.record_usage_batch(text,jsonb)
CREATE OR REPLACE FUNCTION public.record_usage_batch(worker_id text, calls jsonb)
 RETURNS TABLE(job_id uuid, recorded boolean, cost_usd numeric, reason text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  perform private.check_worker_id(record_usage_batch.worker_id);
  perform private.check_batch('calls', calls, '{"job_id", "attempt", "provider", "model", ...}');
  -- The key-share locks of the usage rows' foreign keys, taken first in id order. An item whose
  -- job_id is not a UUID locks nothing here: record_usage_items refuses it by name.
  perform 1 from public.jobs j
  where j.id = any(array(
    select (t.e ->> 'job_id')::uuid from jsonb_array_elements(calls) as t(e)
    where jsonb_typeof(t.e -> 'job_id') = 'string'
      and t.e ->> 'job_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'))
  order by j.id
  for key share;
  return query select * from private.record_usage_items(record_usage_batch.worker_id, calls,
    array(select format('calls[%s]', n - 1) from generate_series(1, jsonb_array_length(calls)) as n));
end;
$function$

-- function public.release_jobs(text,uuid[])
CREATE OR REPLACE FUNCTION public.release_jobs(worker_id text, job_ids uuid[])
 RETURNS SETOF public.jobs
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  perform private.check_worker_id(worker_id);
  perform private.check_array('job_ids', job_ids, 1000);
  -- Graceful shutdown: back to the queue, attempt given back; a requested cancel wins.
  -- job_ids null releases every job the worker holds.
  return query
  with held as (
    select j.id from public.jobs j
    where j.status = 'running' and j.worker_id = release_jobs.worker_id
      and (job_ids is null or j.id = any(job_ids))
    order by j.id
    for update
  ),
  released as (
    update public.jobs j
    set status = case when j.cancel_requested then 'cancelled' else 'queued' end,
        finished_at = case when j.cancel_requested then now() end,
        attempts = greatest(0, j.attempts - 1),
        lease_expires_at = null,
        worker_id = case when j.cancel_requested then j.worker_id end,
        run_at = now()
    from held where j.id = held.id
    returning j.*
  )
  select * from released r order by r.id;
end;
$function$

-- function public.renew_leases(text,uuid[],integer)
CREATE OR REPLACE FUNCTION public.renew_leases(worker_id text, job_ids uuid[], lease_seconds integer DEFAULT 60)
 RETURNS SETOF public.jobs
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
begin
  perform private.check_worker_id(worker_id);
  perform private.check_lease_seconds(lease_seconds);
  perform private.check_array('job_ids', job_ids, 1000);
  -- Only leases still held (running, same worker, not yet expired) are extended; their rows are
  -- locked in id order first (the lock the update itself takes), as release_jobs does.
  with held as (
    select j.id from public.jobs j
    where j.id = any(job_ids) and j.status = 'running' and j.worker_id = renew_leases.worker_id
    order by j.id
    for no key update
  )
  update public.jobs j
  set lease_expires_at = now() + make_interval(secs => lease_seconds), updated_at = clock_timestamp()
  from held
  where j.id = held.id and j.lease_expires_at >= now();
  -- Every listed job's current row, so the worker sees lost leases and cancel requests.
  return query select * from public.jobs j where j.id = any(job_ids) order by j.id;
end;
$function$

-- function public.report_and_complete(text,jsonb,jsonb)
CREATE OR REPLACE FUNCTION public.report_and_complete(worker_id text, reports jsonb, completions jsonb)
 RETURNS TABLE(entry text, job_id uuid, recorded boolean, reason text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
begin
  -- The shapes first (each part checks its items again and stays the definition), so a call
  -- with a malformed part locks nothing.
  perform private.check_worker_id(report_and_complete.worker_id);
  perform private.check_batch('reports', report_and_complete.reports, '{"job_id", "percent", "message", "partial", "started"}');
  perform private.check_batch('completions', report_and_complete.completions, '{"job_id", "result"}');

  -- An item whose job_id is not a UUID is left to its part, which names it.
  perform private.lock_held_jobs(
    array(select (e ->> 'job_id')::uuid
          from (select e from jsonb_array_elements(report_and_complete.reports) as r(e)
                union all
                select e from jsonb_array_elements(report_and_complete.completions) as c(e)) as t
          where jsonb_typeof(e -> 'job_id') = 'string'
            and (e ->> 'job_id') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    report_and_complete.worker_id);

  return query
  select 'reported'::text, r.job_id, r.accepted, r.reason
  from public.report_progress_batch(report_and_complete.worker_id, report_and_complete.reports) as r;

  return query
  select 'completed'::text, c.job_id, c.completed, c.reason
  from public.complete_jobs(report_and_complete.worker_id, report_and_complete.completions) as c;
end;
$function$

-- function public.report_model_rate_limit(text,text,integer,double precision)
CREATE OR REPLACE FUNCTION public.report_model_rate_limit(provider text, model text, status integer, retry_after_seconds double precision)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_until timestamptz;
begin
  perform private.check_provider_model(provider, model);
  if status is null or status not in (429, 529) then
    perform private.raise_invalid('status', format('must be 429 (rate limited) or 529 (overloaded), got %s', coalesce(status::text, 'null')));
  end if;
  if retry_after_seconds is null or retry_after_seconds = 'NaN' or retry_after_seconds not between 0 and 3600 then
    perform private.raise_invalid('retry_after_seconds', format('must be between 0 and 3600, got %s', coalesce(retry_after_seconds::text, 'null')));
  end if;
  v_until := clock_timestamp() + make_interval(secs => retry_after_seconds);
  insert into public.model_capacity as c (provider, model, refilled_at, cooldown_until, cooldown_status, cooldowns)
  values ($1, $2, v_until, v_until, status, 1)
  on conflict on constraint model_capacity_pkey do update
    set cooldown_until = greatest(c.cooldown_until, excluded.cooldown_until),
        cooldown_status = excluded.cooldown_status,
        cooldowns = c.cooldowns + 1,
        requests_left = case when excluded.cooldown_status = 429 then 0 else c.requests_left end,
        refilled_at = case when excluded.cooldown_status = 429 then greatest(c.refilled_at, excluded.refilled_at)
                           else c.refilled_at end
  returning c.cooldown_until into v_until;
  return v_until;
end;
$function$

-- function public.report_progress(uuid,text,numeric,text,text)
CREATE OR REPLACE FUNCTION public.report_progress(job_id uuid, worker_id text, percent numeric DEFAULT NULL::numeric, message text DEFAULT NULL::text, partial text DEFAULT NULL::text)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  j public.jobs;
  v_progress jsonb;
begin
  if percent is null and message is null and partial is null then
    perform private.raise_invalid('percent', 'nothing to report: give percent, message or partial');
  end if;
  if percent is not null and percent not between 0 and 100 then
    perform private.raise_invalid('percent', format('must be between 0 and 100, got %s', private.excerpt(percent::text, 20)));
  end if;
  if message is not null and length(message) > 1000 then
    perform private.raise_invalid('message', format('must be at most 1000 characters, got %s', length(message)));
  end if;
  if partial is not null and octet_length(partial) > 65536 then
    perform private.raise_invalid('partial', format('must be at most 65536 bytes per call, got %s', octet_length(partial)));
  end if;
  j := private.held_job('report_progress', job_id, worker_id);

  if percent is not null or message is not null then
    v_progress := jsonb_build_object(
      'percent', coalesce(round(percent, 1), (j.progress ->> 'percent')::numeric, 0),
      'message', coalesce(message, j.progress ->> 'message'));
    update public.jobs set progress = v_progress where id = j.id;
    insert into public.job_events (job_id, user_id, type, data) values (j.id, j.user_id, 'progress', v_progress);
  end if;
  if partial is not null then
    insert into public.job_events (job_id, user_id, type, data)
    values (j.id, j.user_id, 'partial', jsonb_build_object('text', partial));
  end if;
end;
$function$

-- function public.report_progress_batch(text,jsonb)
CREATE OR REPLACE FUNCTION public.report_progress_batch(worker_id text, reports jsonb)
 RETURNS TABLE(job_id uuid, accepted boolean, reason text)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
#variable_conflict use_column
declare
  item jsonb;
  i integer := 0;
  v_field text;
  v_id uuid;
  v_progress jsonb := '{}';  -- job id -> its progress so far in this call
  v_events jsonb := '{}';    -- job id -> the events written for it, in order
  v_held uuid[];
  v_event jsonb;
begin
  perform private.check_worker_id(report_progress_batch.worker_id);
  perform private.check_batch('reports', reports, '{"job_id", "percent", "message", "partial", "started"}');
  if octet_length(reports::text) > 4194304 then
    perform private.raise_invalid('reports', format('%s bytes exceeds 4 MiB; send fewer reports per call', octet_length(reports::text)));
  end if;
  for item in select e from jsonb_array_elements(reports) as t(e) loop
    v_field := format('reports[%s]', i);
    perform private.check_batch_item(v_field, item, array['job_id', 'percent', 'message', 'partial', 'started']);
    perform private.check_progress_fields(v_field, item);
    if item ? 'partial' and jsonb_typeof(item -> 'partial') <> 'null' then
      if jsonb_typeof(item -> 'partial') <> 'string' then
        perform private.raise_invalid(v_field || '.partial', format('must be a string, got %s', jsonb_typeof(item -> 'partial')));
      end if;
      if octet_length(item ->> 'partial') > 65536 then
        perform private.raise_invalid(v_field || '.partial',
          format('must be at most 65536 bytes per item, got %s', octet_length(item ->> 'partial')));
      end if;
    end if;
    -- "started": true announces the job (its row, status running) after a quiet claim; with
    -- nothing else the item writes no event, and the job's one message carries the row alone.
    if item ? 'started' and jsonb_typeof(item -> 'started') <> 'null' and item -> 'started' <> 'true'::jsonb then
      perform private.raise_invalid(v_field || '.started',
        format('must be true, got %s', private.excerpt((item -> 'started')::text, 20)));
    end if;
    if coalesce(item ->> 'percent', item ->> 'message', item ->> 'partial') is null
       and item -> 'started' is distinct from 'true'::jsonb then
      perform private.raise_invalid(v_field, 'nothing to report: give percent, message, partial or started');
    end if;
    i := i + 1;
  end loop;

  v_held := private.lock_held_jobs(
    array(select (e ->> 'job_id')::uuid from jsonb_array_elements(reports) as t(e)), report_progress_batch.worker_id);
  perform private.quiet_broadcasts(v_held);

  for item in select e from jsonb_array_elements(reports) as t(e) loop
    v_id := (item ->> 'job_id')::uuid;
    continue when not v_id = any(v_held);
    if not v_progress ? v_id::text then
      v_progress := v_progress || jsonb_build_object(v_id::text, (select j.progress from public.jobs j where j.id = v_id));
      v_events := v_events || jsonb_build_object(v_id::text, '[]'::jsonb);
    end if;
    if coalesce(item ->> 'percent', item ->> 'message') is not null then
      v_progress := jsonb_set(v_progress, array[v_id::text], private.next_progress(v_progress -> v_id::text, item));
      v_event := private.add_job_event(v_id, 'progress', v_progress -> v_id::text);
      v_events := jsonb_set(v_events, array[v_id::text], (v_events -> v_id::text) || jsonb_build_array(v_event));
    end if;
    if item ->> 'partial' is not null then
      v_event := private.add_job_event(v_id, 'partial', jsonb_build_object('text', item ->> 'partial'));
      v_events := jsonb_set(v_events, array[v_id::text], (v_events -> v_id::text) || jsonb_build_array(v_event));
    end if;
  end loop;

  -- The row gets the last progress; then one message per job carries the row and its events.
  update public.jobs j set progress = v_progress -> j.id::text, updated_at = clock_timestamp()
  where j.id = any(v_held) and j.progress is distinct from v_progress -> j.id::text;
  perform private.send_messages('job', array_agg('jobs:' || j.user_id::text order by j.id),
                                 array_agg(private.job_message(j, v_events -> j.id::text) order by j.id))
  from public.jobs j where j.id = any(v_held);
  perform private.quiet_broadcasts(null);

  return query
  with input as (
    select distinct on ((e ->> 'job_id')::uuid) (e ->> 'job_id')::uuid as id, ord
    from jsonb_array_elements(reports) with ordinality as t(e, ord)
    order by (e ->> 'job_id')::uuid, ord
  )
  select input.id, input.id = any(v_held),
         -- A lookup per refused item only: a join was planned as a scan of the whole table.
         case when input.id = any(v_held) then null
              else private.not_held_reason((select j from public.jobs j where j.id = input.id), report_progress_batch.worker_id) end
  from input
  order by input.ord;
end;
$function$

-- function public.set_plan(text,numeric,text,boolean)
CREATE OR REPLACE FUNCTION public.set_plan(plan text, monthly_budget_usd numeric, description text DEFAULT NULL::text, is_default boolean DEFAULT NULL::boolean)
 RETURNS public.plans
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$

-- function public.set_plan_kind_limits(text,text,integer,integer,integer)
CREATE OR REPLACE FUNCTION public.set_plan_kind_limits(plan text, kind text, priority integer DEFAULT NULL::integer, rate_limit_per_minute integer DEFAULT NULL::integer, max_running_per_user integer DEFAULT NULL::integer)
 RETURNS public.plan_kind_limits
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$

-- function public.set_user_plan(uuid,text)
CREATE OR REPLACE FUNCTION public.set_user_plan(user_id uuid, plan text)
 RETURNS public.user_plans
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
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
$function$

-- function public.unpark_worker(text,uuid[])
CREATE OR REPLACE FUNCTION public.unpark_worker(worker_id text, handed_seen uuid[] DEFAULT NULL::uuid[])
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO ''
AS $function$
declare
  v_unseen uuid[];
begin
  perform private.check_worker_id(worker_id);
  perform private.check_array('handed_seen', handed_seen, 1000);
  -- The row lock orders this against a hand-off: one committed before is in handed, one after
  -- finds no entry.
  with gone as (
    delete from public.worker_wakeups w where w.worker_id = unpark_worker.worker_id returning w.handed
  )
  select coalesce(array_agg(h.id), '{}') into v_unseen
  from gone cross join lateral unnest(gone.handed) h(id)
  where h.id <> all(coalesce(handed_seen, '{}'));
  -- Jobs handed to it that it will not run (it stopped before their message came): back to the
  -- queue with the attempt given back, as release_jobs does at any graceful stop.
  if cardinality(v_unseen) > 0 then
    perform public.release_jobs(worker_id => unpark_worker.worker_id, job_ids => v_unseen);
  end if;
end;
$function$

-- policy public.job_events users read their own job events
PERMISSIVE for SELECT to authenticated
  using (user_id = ( SELECT auth.uid() AS uid))

-- policy public.job_kinds signed-in users read job kinds
PERMISSIVE for SELECT to authenticated
  using true

-- policy public.jobs users read their own jobs
PERMISSIVE for SELECT to authenticated
  using (user_id = ( SELECT auth.uid() AS uid))

-- policy public.model_prices signed-in users read model prices
PERMISSIVE for SELECT to authenticated
  using true

-- policy public.plan_kind_limits signed-in users read plan limits
PERMISSIVE for SELECT to authenticated
  using true

-- policy public.plans signed-in users read plans
PERMISSIVE for SELECT to authenticated
  using true

-- policy public.usage_ledger users read their own usage
PERMISSIVE for SELECT to authenticated
  using (user_id = ( SELECT auth.uid() AS uid))

-- policy public.user_plans users read their own plan
PERMISSIVE for SELECT to authenticated
  using (user_id = ( SELECT auth.uid() AS uid))

-- policy realtime.messages users receive their own job topic
PERMISSIVE for SELECT to authenticated
  using ((( SELECT realtime.topic() AS topic) = ('jobs:'::text || (( SELECT auth.uid() AS uid))::text)) AND (extension = 'broadcast'::text))

-- policy storage.objects users read their own job artifacts
PERMISSIVE for SELECT to authenticated
  using ((bucket_id = 'job-artifacts'::text) AND ((storage.foldername(name))[1] = (( SELECT auth.uid() AS uid))::text))

-- grant private.add_job_event(uuid,text,jsonb)


-- grant private.advance_dependents(uuid[])


-- grant private.broadcast_job_change()


-- grant private.broadcast_job_event()


-- grant private.budget_period_start(timestamp with time zone)


-- grant private.budget_spend


-- grant private.budget_use(uuid)


-- grant private.cache_key(text,jsonb)


-- grant private.cached_result(uuid,text,jsonb)


-- grant private.check_array(text,anyarray,integer)


-- grant private.check_batch(text,jsonb,text)


-- grant private.check_batch_item(text,jsonb,text[])


-- grant private.check_batch_object(text,jsonb,text[])


-- grant private.check_budget(uuid)


-- grant private.check_count(text,integer,integer)


-- grant private.check_interval(text,interval,interval)


-- grant private.check_json(text,jsonb,integer)


-- grant private.check_json_integer(text,jsonb)


-- grant private.check_json_string(text,jsonb)


-- grant private.check_kinds(text,text[])


-- grant private.check_lease_seconds(integer)


-- grant private.check_plan_name(text,text,boolean)


-- grant private.check_plan_priority(uuid,public.job_kinds,integer)


-- grant private.check_progress_fields(text,jsonb)


-- grant private.check_provider_model(text,text)


-- grant private.check_timestamp(text,timestamp with time zone,interval,interval)


-- grant private.check_worker_id(text)


-- grant private.claimable_jobs(uuid,text,integer)


-- grant private.delete_cached_copies()


-- grant private.excerpt(text,integer)


-- grant private.grant_calls(text[],text)


-- grant private.group_key(uuid,text)


-- grant private.held_job(text,uuid,text)


-- grant private.is_quiet(uuid)


-- grant private.job_broadcast_payload(public.jobs)


-- grant private.job_event_payload(public.job_events)


-- grant private.job_message(public.jobs,jsonb)


-- grant private.keep_budget_spend()


-- grant private.kind_on_plan(uuid,public.job_kinds)


-- grant private.lock_class(text)


-- grant private.lock_held_jobs(uuid[],text)


-- grant private.next_progress(jsonb,jsonb)


-- grant private.not_held_reason(public.jobs,text)


-- grant private.purge_expired_cache_entries()


-- grant private.quiet_broadcasts(uuid[])


-- grant private.raise_invalid(text,text,text)


-- grant private.record_artifact_deletions()


-- grant private.record_usage_items(text,jsonb,text[])


-- grant private.refuse_view_write()


-- grant private.retry_delay(integer,double precision)


-- grant private.running_cap(uuid,text)


-- grant private.send_messages(text,text[],jsonb[])


-- grant private.store_cached_results(uuid[])


-- grant private.touch_updated_at()


-- grant private.usage_cost(public.model_prices,integer,integer,integer,integer)


-- grant private.user_plan(uuid)


-- grant private.wake_channel(text)


-- grant private.wake_for_queued_jobs()


-- grant private.wake_parked_workers(text,integer,timestamp with time zone,timestamp with time zone)


-- grant private.wakeup_gate


-- grant public.ack_artifact_deletions(bigint[])
service_role:EXECUTE

-- grant public.acquire_model_capacity(text,text,integer)
service_role:EXECUTE

-- grant public.acquire_model_capacity_batch(jsonb)
service_role:EXECUTE

-- grant public.active_jobs
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.artifact_deletions
service_role:SELECT

-- grant public.artifact_deletions_id_seq


-- grant public.cancel_job(uuid)
authenticated:EXECUTE, service_role:EXECUTE

-- grant public.claim_artifact_deletions(integer,integer)
service_role:EXECUTE

-- grant public.claim_jobs(text,text[],integer,integer)
service_role:EXECUTE

-- grant public.claim_jobs_or_park(text,text[],integer,integer,integer,boolean,uuid[],text)
service_role:EXECUTE

-- grant public.complete_and_claim(text,jsonb,text[],integer,integer)
service_role:EXECUTE

-- grant public.complete_job(uuid,text,jsonb)
service_role:EXECUTE

-- grant public.complete_jobs(text,jsonb)
service_role:EXECUTE

-- grant public.cost_per_kind
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.defer_job(uuid,text,timestamp with time zone,text)
service_role:EXECUTE

-- grant public.enqueue_job(text,jsonb,text,integer,timestamp with time zone,uuid,boolean)
authenticated:EXECUTE, service_role:EXECUTE

-- grant public.enqueue_orphaned_artifacts(interval,integer)
service_role:EXECUTE

-- grant public.fail_job(uuid,text,jsonb,boolean)
service_role:EXECUTE

-- grant public.job_costs
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.job_events
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.job_events_id_seq
service_role:SELECT, service_role:UPDATE, service_role:USAGE

-- grant public.job_kinds
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.job_result_cache
service_role:SELECT

-- grant public.job_stats
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.jobs
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.kind_models
service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.model_capacity
service_role:SELECT

-- grant public.model_prices
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.my_spend
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.next_job_run_at(text[])
service_role:EXECUTE

-- grant public.pending_jobs_queue
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.plan_kind_limits
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.plans
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.provider_limits
service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.purge_finished_jobs(interval)
service_role:EXECUTE

-- grant public.reap_expired_leases()
service_role:EXECUTE

-- grant public.record_usage(uuid,text,integer,text,text,integer,integer,integer,integer,integer)
service_role:EXECUTE

-- grant public.record_usage_batch(text,jsonb)
service_role:EXECUTE

-- grant public.release_jobs(text,uuid[])
service_role:EXECUTE

-- grant public.renew_leases(text,uuid[],integer)
service_role:EXECUTE

-- grant public.report_and_complete(text,jsonb,jsonb)
service_role:EXECUTE

-- grant public.report_model_rate_limit(text,text,integer,double precision)
service_role:EXECUTE

-- grant public.report_progress(uuid,text,numeric,text,text)
service_role:EXECUTE

-- grant public.report_progress_batch(text,jsonb)
service_role:EXECUTE

-- grant public.set_plan(text,numeric,text,boolean)
service_role:EXECUTE

-- grant public.set_plan_kind_limits(text,text,integer,integer,integer)
service_role:EXECUTE

-- grant public.set_user_plan(uuid,text)
service_role:EXECUTE

-- grant public.spend_by_user_month
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.tokens_per_kind
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.unpark_worker(text,uuid[])
service_role:EXECUTE

-- grant public.usage_ledger
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.usage_ledger_id_seq
service_role:SELECT, service_role:UPDATE, service_role:USAGE

-- grant public.user_plans
authenticated:SELECT, service_role:DELETE, service_role:INSERT, service_role:MAINTAIN, service_role:REFERENCES, service_role:SELECT, service_role:TRIGGER, service_role:TRUNCATE, service_role:UPDATE

-- grant public.worker_wakeups


-- publication supabase_realtime public.jobs


-- row public.job_kinds generate_design
{"kind": "generate_design", "heavy": false, "cache_scope": "user", "description": "Prompt + design-system summary -> Figma node tree (Claude)", "max_attempts": 3, "prompt_version": "1", "timeout_seconds": 180, "default_priority": 0, "cache_ttl_seconds": null, "max_payload_bytes": 65536, "estimated_cost_usd": 0.020000, "max_running_per_user": 2, "rate_limit_per_minute": 10}

-- row public.job_kinds generate_edits
{"kind": "generate_edits", "heavy": true, "cache_scope": "user", "description": "Streamed copy-edit variants (Claude streaming)", "max_attempts": 3, "prompt_version": "1", "timeout_seconds": 180, "default_priority": 0, "cache_ttl_seconds": null, "max_payload_bytes": 65536, "estimated_cost_usd": 0.010000, "max_running_per_user": 1, "rate_limit_per_minute": 3}

-- row public.job_kinds generate_image
{"kind": "generate_image", "heavy": true, "cache_scope": "user", "description": "Image generation (Gemini); bytes go to Storage", "max_attempts": 2, "prompt_version": "1", "timeout_seconds": 180, "default_priority": 0, "cache_ttl_seconds": null, "max_payload_bytes": 16384, "estimated_cost_usd": 0.040000, "max_running_per_user": 1, "rate_limit_per_minute": 3}

-- row public.job_kinds rename_layers
{"kind": "rename_layers", "heavy": false, "cache_scope": "user", "description": "Up to 500 layers -> descriptive names (Claude, batched in parallel)", "max_attempts": 3, "prompt_version": "1", "timeout_seconds": 120, "default_priority": 10, "cache_ttl_seconds": null, "max_payload_bytes": 262144, "estimated_cost_usd": 0.010000, "max_running_per_user": 3, "rate_limit_per_minute": 10}

-- row storage.buckets job-artifacts
{"id": "job-artifacts", "name": "job-artifacts", "public": false, "owner_id": null, "file_size_limit": 20971520, "allowed_mime_types": ["image/png", "image/jpeg", "image/webp"]}
