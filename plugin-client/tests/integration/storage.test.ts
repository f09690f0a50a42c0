// The image path the UI takes: the worker stores bytes under
// job-artifacts/<user_id>/<job_id>/…; the user downloads them with their JWT.
import { afterAll, describe, expect, it } from 'vitest';
import { ensureSignedIn } from '../../src/auth/session';
import { serviceClient, stack, userClient } from './env';

describe.skipIf(!stack)('job artifacts in Storage', () => {
  const cleanup: string[] = [];

  afterAll(async () => {
    if (cleanup.length > 0) await serviceClient().storage.from('job-artifacts').remove(cleanup);
  });

  it("lets a user download their own artifact and nobody else's", async () => {
    const owner = userClient();
    const uid = await ensureSignedIn(owner);
    const path = `${uid}/00000000-0000-4000-8000-000000000001/image.png`;
    const bytes = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
    const upload = await serviceClient()
      .storage.from('job-artifacts')
      .upload(path, new Blob([bytes], { type: 'image/png' }), { contentType: 'image/png', upsert: true });
    expect(upload.error).toBeNull();
    cleanup.push(path);

    const { data, error } = await owner.storage.from('job-artifacts').download(path);
    expect(error).toBeNull();
    expect(new Uint8Array(await data!.arrayBuffer())).toEqual(bytes);

    const stranger = userClient();
    await ensureSignedIn(stranger);
    const denied = await stranger.storage.from('job-artifacts').download(path);
    expect(denied.data).toBeNull();
    expect(denied.error).not.toBeNull();
  });
});
