-- pg_cron: reap expired leases every 30 seconds and purge finished jobs daily.
-- pg_cron lives in one database per cluster (cron.database_name, "postgres" on Supabase); in
-- any other database (e.g. a test clone) scheduling is skipped with a notice.

do $$
declare
  cron_db text;
begin
  begin
    cron_db := current_setting('cron.database_name', true);
  exception when insufficient_privilege then
    -- pg_cron marks the setting superuser-only, and hosted's postgres is not a superuser (it may
    -- lack pg_read_all_settings too): assume hosted's layout, pg_cron in database postgres.
    cron_db := null;
  end;
  if not exists (select 1 from pg_available_extensions where name = 'pg_cron') then
    raise notice 'pg_cron is not available; schedule reap_expired_leases() and purge_finished_jobs() elsewhere';
    return;
  end if;
  if current_database() <> coalesce(cron_db, 'postgres') then
    raise notice 'pg_cron runs in database %, not %; jobs not scheduled here', coalesce(cron_db, 'postgres'), current_database();
    return;
  end if;
  create extension if not exists pg_cron;
  begin
    perform cron.schedule('reap-expired-job-leases', '30 seconds', 'select public.reap_expired_leases()');
  exception when others then
    -- pg_cron before 1.5 has no second-level schedules: every minute there (the worker's sweep
    -- also reaps, so recovery does not wait for it).
    perform cron.schedule('reap-expired-job-leases', '* * * * *', 'select public.reap_expired_leases()');
  end;
  perform cron.schedule('purge-finished-jobs', '17 3 * * *', 'select public.purge_finished_jobs()');
end
$$;
