-- Named queries of the psycopg adapter: one statement per queue operation, loaded once by
-- worker/adapters/sql_queries.py. Each calls the SQL API function of the same name, so the
-- semantics stay in the migrations and this file stays a thin, reviewable list.
-- Job rows come back as JSON text, one column per row, as PostgREST sends them: the worker reads
-- each row on its own (worker/core/job_rows.py), so a value Python cannot load (run_at = -infinity,
-- a date BC, JSON nested too deep) fails that row alone instead of the whole fetch.

-- name: claim_jobs
select to_jsonb(j)::text as job from public.claim_jobs(
  worker_id => %(worker_id)s, kinds => %(kinds)s, max_jobs => %(max_jobs)s, lease_seconds => %(lease_seconds)s) as j;

-- name: claim_jobs_or_park
select to_jsonb(j)::text as job from public.claim_jobs_or_park(
  worker_id => %(worker_id)s, kinds => %(kinds)s, max_jobs => %(max_jobs)s, lease_seconds => %(lease_seconds)s,
  park_seconds => %(park_seconds)s, handoffs => %(handoffs)s, handed_seen => %(handed_seen)s::uuid[],
  wake_via => %(wake_via)s) as j;

-- name: unpark_worker
select public.unpark_worker(worker_id => %(worker_id)s, handed_seen => %(handed_seen)s::uuid[]);

-- name: renew_leases
select to_jsonb(j)::text as job from public.renew_leases(
  worker_id => %(worker_id)s, job_ids => %(job_ids)s::uuid[], lease_seconds => %(lease_seconds)s) as j;

-- name: report_progress
select public.report_progress(
  job_id => %(job_id)s, worker_id => %(worker_id)s, percent => %(percent)s::numeric, message => %(message)s,
  partial => %(partial)s);

-- name: report_progress_batch
select * from public.report_progress_batch(worker_id => %(worker_id)s, reports => %(reports)s);

-- name: complete_job
select to_jsonb(j)::text as job from public.complete_job(
  job_id => %(job_id)s, worker_id => %(worker_id)s, result => %(result)s) as j;

-- name: complete_jobs
select * from public.complete_jobs(worker_id => %(worker_id)s, completions => %(completions)s);

-- name: complete_and_claim
-- The claimed rows' column ("job") is JSON text already, as for claim_jobs above.
select entry, job_id, completed, reason, job from public.complete_and_claim(
  worker_id => %(worker_id)s, completions => %(completions)s, kinds => %(kinds)s, max_jobs => %(max_jobs)s,
  lease_seconds => %(lease_seconds)s);

-- name: report_and_complete
select entry, job_id, recorded, reason from public.report_and_complete(
  worker_id => %(worker_id)s, reports => %(reports)s, completions => %(completions)s);

-- name: fail_job
select to_jsonb(j)::text as job from public.fail_job(
  job_id => %(job_id)s, worker_id => %(worker_id)s, error => %(error)s, retryable => %(retryable)s) as j;

-- name: defer_job
select to_jsonb(j)::text as job from public.defer_job(
  job_id => %(job_id)s, worker_id => %(worker_id)s, run_at => %(run_at)s, reason => %(reason)s) as j;

-- name: release_jobs
select to_jsonb(j)::text as job from public.release_jobs(
  worker_id => %(worker_id)s, job_ids => %(job_ids)s::uuid[]) as j;

-- name: record_usage
select u.cost_usd from public.record_usage(
  job_id => %(job_id)s, worker_id => %(worker_id)s, attempt => %(attempt)s, provider => %(provider)s,
  model => %(model)s, input_tokens => %(input_tokens)s, output_tokens => %(output_tokens)s,
  cached_tokens => %(cached_tokens)s, images => %(images)s, latency_ms => %(latency_ms)s) as u;

-- name: record_usage_batch
select * from public.record_usage_batch(worker_id => %(worker_id)s, calls => %(calls)s);

-- name: reap_expired_leases
select public.reap_expired_leases() as reaped;

-- name: next_job_run_at
-- ISO text (or null) for the same reason: the earliest run_at may be 'infinity'.
select to_jsonb(public.next_job_run_at(kinds => %(kinds)s)) #>> '{}' as run_at;

-- name: job_kinds
select kind, timeout_seconds, max_attempts from public.job_kinds order by kind;

-- name: acquire_model_capacity
select granted, wait_seconds, reason from public.acquire_model_capacity(
  provider => %(provider)s, model => %(model)s, tokens => %(tokens)s);

-- name: acquire_model_capacity_batch
select item, granted, wait_seconds, reason from public.acquire_model_capacity_batch(requests => %(requests)s);

-- name: report_model_rate_limit
-- ISO text, as PostgREST answers it.
select to_jsonb(public.report_model_rate_limit(provider => %(provider)s, model => %(model)s,
  status => %(status)s, retry_after_seconds => %(retry_after_seconds)s::double precision)) #>> '{}' as value;

-- name: kind_models
select kind, provider, model from public.kind_models order by kind, position;

-- name: purge_finished_jobs
select public.purge_finished_jobs(older_than => %(older_than)s::interval) as value;

-- name: enqueue_orphaned_artifacts
select public.enqueue_orphaned_artifacts(grace => %(grace)s::interval, max_items => %(max_items)s) as value;

-- name: claim_artifact_deletions
select * from public.claim_artifact_deletions(max_items => %(max_items)s, lease_seconds => %(lease_seconds)s);

-- name: ack_artifact_deletions
select * from public.ack_artifact_deletions(ids => %(ids)s::bigint[]);

-- name: job_stats
select * from public.job_stats order by kind, status;

-- name: active_jobs
select * from public.active_jobs;

-- name: pending_jobs_queue
select * from public.pending_jobs_queue limit 200;

-- name: spend_by_user_month
select * from public.spend_by_user_month order by month desc, spent_usd desc limit 200;

-- name: cost_per_kind
select * from public.cost_per_kind order by kind;

-- name: tokens_per_kind
select * from public.tokens_per_kind order by kind, provider, model;
