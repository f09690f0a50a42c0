// The suite really runs on the key flavour it was asked for (scripts/test.sh runs it under both),
// and the publishable or anon key it hands the plugin is accepted by the stack.
import { describe, expect, it } from 'vitest';
import { ensureSignedIn } from '../../src/auth/session';
import { stack, userClient } from './env';

const JWT = /^[\w-]+\.[\w-]+\.[\w-]+$/;

describe.skipIf(!stack)('API key flavour', () => {
  it('uses the publishable/secret keys in the new flavour, the JWT keys in legacy', () => {
    if (!stack) throw new Error('no stack');
    if (stack.flavour === 'new') {
      expect(stack.anonKey).toMatch(/^sb_publishable_/);
      expect(stack.serviceRoleKey).toMatch(/^sb_secret_/);
    } else {
      expect(stack.anonKey).toMatch(JWT);
      expect(stack.serviceRoleKey).toMatch(JWT);
    }
  });

  it('signs the plugin user in with that key', async () => {
    const client = userClient();
    const uid = await ensureSignedIn(client);
    const { data, error } = await client.auth.getClaims();
    expect(error).toBeNull();
    expect(data?.claims.sub).toBe(uid);
    expect(data?.claims.role).toBe('authenticated');
  });
});
