-- Storage for generated images: private bucket job-artifacts, one folder per user
-- (<user_id>/<job_id>/<file>). The worker writes with the service role; a user reads only
-- their own folder. No client writes.

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ('job-artifacts', 'job-artifacts', false, 20971520, array['image/png', 'image/jpeg', 'image/webp'])
on conflict (id) do nothing;

create policy "users read their own job artifacts"
  on storage.objects for select to authenticated
  using (bucket_id = 'job-artifacts' and (storage.foldername(name))[1] = (select auth.uid())::text);
