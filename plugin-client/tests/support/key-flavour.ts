// Which API keys the integration and e2e suites (and the worker they start) use.
export type KeyFlavour = 'new' | 'legacy';

/**
 * SUPABASE_KEY_FLAVOUR picks the keys: `new` (SUPABASE_PUBLISHABLE_KEY + SUPABASE_SECRET_KEY, the
 * default when they are set) or `legacy` (SUPABASE_ANON_KEY + SUPABASE_SERVICE_ROLE_KEY).
 * scripts/test.sh runs the integration and e2e suites once per flavour.
 */
export function keyFlavour(env: NodeJS.ProcessEnv = process.env): KeyFlavour {
  const flavour = env.SUPABASE_KEY_FLAVOUR || (env.SUPABASE_PUBLISHABLE_KEY ? 'new' : 'legacy');
  if (flavour !== 'new' && flavour !== 'legacy') {
    throw new Error(`SUPABASE_KEY_FLAVOUR must be "new" or "legacy", not ${JSON.stringify(flavour)}`);
  }
  return flavour;
}
