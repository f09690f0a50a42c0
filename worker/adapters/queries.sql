-- Named queries of the psycopg adapter: one statement per queue operation, loaded once by
-- worker/adapters/sql_queries.py. Each calls the SQL API function of the same name, so the
-- semantics stay in the migrations and this file stays a thin, reviewable list.

-- name: claim_jobs
select * from public.claim_jobs(
  worker_id => %(worker_id)s, kinds => %(kinds)s, max_jobs => %(max_jobs)s, lease_seconds => %(lease_seconds)s);

-- name: renew_leases
select * from public.renew_leases(
  worker_id => %(worker_id)s, job_ids => %(job_ids)s::uuid[], lease_seconds => %(lease_seconds)s);

-- name: report_progress
select public.report_progress(
  job_id => %(job_id)s, worker_id => %(worker_id)s, percent => %(percent)s::numeric, message => %(message)s,
  partial => %(partial)s);

-- name: complete_job
select * from public.complete_job(job_id => %(job_id)s, worker_id => %(worker_id)s, result => %(result)s);

-- name: complete_jobs
select * from public.complete_jobs(worker_id => %(worker_id)s, completions => %(completions)s);

-- name: fail_job
select * from public.fail_job(
  job_id => %(job_id)s, worker_id => %(worker_id)s, error => %(error)s, retryable => %(retryable)s);

-- name: defer_job
select * from public.defer_job(
  job_id => %(job_id)s, worker_id => %(worker_id)s, run_at => %(run_at)s, reason => %(reason)s);

-- name: release_jobs
select * from public.release_jobs(worker_id => %(worker_id)s, job_ids => %(job_ids)s::uuid[]);

-- name: reap_expired_leases
select public.reap_expired_leases() as reaped;

-- name: next_job_run_at
select public.next_job_run_at(kinds => %(kinds)s) as run_at;

-- name: job_kinds
select kind, timeout_seconds, max_attempts from public.job_kinds order by kind;

-- name: job_stats
select * from public.job_stats order by kind, status;

-- name: active_jobs
select * from public.active_jobs;

-- name: pending_jobs_queue
select * from public.pending_jobs_queue limit 200;

-- name: listen
listen jobs_queued;
