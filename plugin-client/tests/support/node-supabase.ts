// supabase-js in Node 20: there is no global WebSocket (supabase-js 2.119
// targets Node >= 22), so the Realtime client gets the `ws` package as its
// transport. The browser build uses the native WebSocket.
import { createClient, type SupabaseClient, type SupabaseClientOptions } from '@supabase/supabase-js';
import WebSocket from 'ws';

export function nodeSupabase(url: string, key: string, options: SupabaseClientOptions<'public'> = {}): SupabaseClient {
  return createClient(url, key, {
    ...options,
    realtime: { ...options.realtime, transport: WebSocket as unknown as NonNullable<NonNullable<SupabaseClientOptions<'public'>['realtime']>['transport']> },
  });
}
