// Creating the plugin's Supabase client and making sure it has a user.
import {
  createClient,
  type SupabaseClient,
  type SupabaseClientOptions,
  type SupportedStorage,
} from '@supabase/supabase-js';

export interface PluginSupabaseOptions {
  url: string;
  anonKey: string;
  storage: SupportedStorage;
  /** Extra options, e.g. `realtime.transport` for Node without a global WebSocket. */
  overrides?: Omit<SupabaseClientOptions<'public'>, 'auth'>;
}

export function createPluginSupabase(options: PluginSupabaseOptions): SupabaseClient {
  return createClient(options.url, options.anonKey, {
    ...options.overrides,
    auth: {
      storage: options.storage,
      persistSession: true,
      autoRefreshToken: true,
      // The iframe URL never carries an OAuth callback.
      detectSessionInUrl: false,
    },
  });
}

export class SignInError extends Error {
  override name = 'SignInError';
}

/**
 * Returns the signed-in user's id, signing in anonymously when there is no
 * usable stored session (first run, or the user no longer exists on the
 * server, e.g. after a local stack reset). A valid stored session, anonymous
 * or email, is reused.
 */
export async function ensureSignedIn(supabase: SupabaseClient): Promise<string> {
  const { data, error } = await supabase.auth.getSession();
  if (error) throw new SignInError(`Could not read the saved session: ${error.message}`);
  if (data.session) {
    const check = await supabase.auth.getUser();
    if (!check.error && check.data.user) return check.data.user.id;
    const status = check.error?.status ?? 0;
    // Offline or a server hiccup: keep the session; requests will tell.
    if (status !== 401 && status !== 403 && status !== 404) return data.session.user.id;
    // The server rejects the stored session: drop it locally, start afresh.
    await supabase.auth.signOut({ scope: 'local' });
  }
  const signIn = await supabase.auth.signInAnonymously();
  if (signIn.error) throw new SignInError(`Anonymous sign-in failed: ${signIn.error.message}`);
  const user = signIn.data.user;
  if (!user) throw new SignInError('Anonymous sign-in returned no user');
  return user.id;
}
