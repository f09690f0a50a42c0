-- Who may call what, once for the whole API: users submit and cancel; only the service role runs
-- the worker side; nothing in schema private is callable through the API (create function
-- grants execute to public, so it is taken back here, after the last private function).

revoke all on function
  public.enqueue_job(text, jsonb, text, integer, timestamptz, uuid),
  public.cancel_job(uuid),
  public.claim_jobs(text, text[], integer, integer),
  public.renew_leases(text, uuid[], integer),
  public.release_jobs(text, uuid[]),
  public.reap_expired_leases(),
  public.next_job_run_at(text[]),
  public.report_progress(uuid, text, numeric, text, text),
  public.complete_job(uuid, text, jsonb),
  public.complete_jobs(text, jsonb),
  public.fail_job(uuid, text, jsonb, boolean),
  public.defer_job(uuid, text, timestamptz, text),
  public.purge_finished_jobs(interval)
from public, anon, authenticated;

grant execute on function
  public.enqueue_job(text, jsonb, text, integer, timestamptz, uuid),
  public.cancel_job(uuid)
to authenticated;

grant execute on function
  public.claim_jobs(text, text[], integer, integer),
  public.renew_leases(text, uuid[], integer),
  public.release_jobs(text, uuid[]),
  public.reap_expired_leases(),
  public.next_job_run_at(text[]),
  public.report_progress(uuid, text, numeric, text, text),
  public.complete_job(uuid, text, jsonb),
  public.complete_jobs(text, jsonb),
  public.fail_job(uuid, text, jsonb, boolean),
  public.defer_job(uuid, text, timestamptz, text),
  public.purge_finished_jobs(interval)
to service_role;

revoke all on all functions in schema private from public, anon, authenticated;
