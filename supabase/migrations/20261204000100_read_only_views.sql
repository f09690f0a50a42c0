-- The dashboard views are read-only: a write to one is a clear 405, never a 500.
--
-- Why: PostgreSQL's rewriter refuses a write to a view that is not automatically updatable
-- (GROUP BY, window functions) with SQLSTATE 55000 before it checks privileges, and PostgREST
-- answers class 55 with HTTP 500, so any signed-in user could turn `DELETE /rest/v1/job_stats`
-- into a server error (issue 10). An INSTEAD OF trigger makes the view "updatable by trigger":
-- privileges are then checked first (users and the service role hold only SELECT: 42501, HTTP
-- 401/403), and a role that does hold write privileges reaches the trigger, which raises PT405
-- (PostgREST answers HTTP 405). active_jobs is auto-updatable today; it gets the trigger too,
-- so no write through any dashboard view reaches the jobs table.

create function private.refuse_view_write() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception '% is a read-only view', tg_table_name
    using errcode = 'PT405', hint = 'Write through the RPC functions (enqueue_job, cancel_job, ...).';
end;
$$;

revoke all on function private.refuse_view_write() from public;

create trigger read_only instead of insert or update or delete on public.job_stats
  for each row execute function private.refuse_view_write();
create trigger read_only instead of insert or update or delete on public.active_jobs
  for each row execute function private.refuse_view_write();
create trigger read_only instead of insert or update or delete on public.pending_jobs_queue
  for each row execute function private.refuse_view_write();
