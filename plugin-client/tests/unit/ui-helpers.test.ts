import { describe, expect, it } from 'vitest';
import { JobFailedError, NetworkError, RateLimitError, ValidationError } from '../../src/jobs/errors';
import { RelayTimeoutError } from '../../src/shared/rpc';
import { describeError } from '../../src/ui/messages';
import { editText, parseImageResult, summarizeApplyDesign } from '../../src/ui/results';
import { validateSettings } from '../../src/ui/settings';

describe('describeError', () => {
  it('gives plain messages for typed errors', () => {
    expect(describeError(new RateLimitError('x', 11.2))).toBe('Too many jobs right now. Try again in 12 s.');
    expect(describeError(new ValidationError('payload is too large', 'payload'))).toBe('Invalid payload: payload is too large');
    expect(describeError(new ValidationError('bad', null))).toBe('Invalid request: bad');
    expect(describeError(new NetworkError('fetch failed'))).toMatch(/Cannot reach Supabase/);
    expect(describeError(new JobFailedError('j', { type: 'provider_error', message: 'quota', retryable: false, attempt: 1 }))).toBe(
      'The job failed (provider_error): quota',
    );
    expect(describeError(new RelayTimeoutError('storage-get', 10))).toMatch(/did not respond/);
    expect(describeError('plain')).toBe('plain');
  });
});

describe('results', () => {
  it('parses image results and rejects ones without a path', () => {
    expect(parseImageResult({ path: 'u1/j1/image.png', mime_type: 'image/png', width: 512, height: 256, bytes: 10 })).toEqual({
      path: 'u1/j1/image.png',
      mimeType: 'image/png',
      width: 512,
      height: 256,
    });
    expect(() => parseImageResult({ mime_type: 'image/png' })).toThrowError(/storage path/);
  });

  it('formats edit variants, falling back to the streamed text', () => {
    expect(
      editText({ variants: [{ title: 'Concise', text: 'Sign in' }, { title: '', text: 'Welcome back' }, { title: 'x' }] }, 'streamed'),
    ).toEqual({ text: '1. Concise\nSign in\n\n2. Variant 2\nWelcome back', count: 2 });
    expect(editText({ variants: [] }, 'streamed')).toEqual({ text: 'streamed', count: 0 });
    expect(editText(null, '')).toEqual({ text: '', count: 0 });
  });

  it('summarises an applied design', () => {
    expect(summarizeApplyDesign({ created: 1, missingComponents: [], fontFallbacks: [] })).toBe('Created 1 layer');
    expect(summarizeApplyDesign({ created: 5, missingComponents: ['k'], fontFallbacks: ['Foo Bold'] })).toBe(
      'Created 5 layers; 1 component(s) unavailable, placeholders used; fonts replaced: Foo Bold',
    );
  });
});

describe('validateSettings', () => {
  it('trims and checks the URL and key', () => {
    expect(validateSettings(' https://abc.supabase.co/ ', ' key ')).toEqual({ url: 'https://abc.supabase.co', anonKey: 'key' });
    expect(() => validateSettings('abc.supabase.co', 'k')).toThrowError(/valid URL/);
    expect(() => validateSettings('ftp://x', 'k')).toThrowError(/https/);
    expect(() => validateSettings('http://localhost:54321', '  ')).toThrowError(/publishable \(or legacy anon\) key is required/);
  });

  it('refuses secret keys, which would ship to every user and bypass RLS', () => {
    const jwt = (claims: object): string =>
      ['{"alg":"HS256","typ":"JWT"}', JSON.stringify(claims)]
        .map((part) => btoa(part).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_'))
        .join('.') + '.c2ln';
    const url = 'https://abc.supabase.co';
    expect(() => validateSettings(url, jwt({ role: 'service_role', iss: 'supabase' }))).toThrowError(
      /legacy service_role key \(secret\): use the project's publishable key/,
    );
    expect(() => validateSettings(url, 'sb_secret_abc123')).toThrowError(/secret/);
    expect(validateSettings(url, jwt({ role: 'anon', iss: 'supabase' })).anonKey).toContain('.');
    expect(validateSettings(url, 'sb_publishable_abc').anonKey).toBe('sb_publishable_abc');
  });

  it('accepts a publishable key in the hosted format and refuses a secret key with a clear message', () => {
    const url = 'https://abc.supabase.co';
    const publishable = 'sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH';
    const secret = 'sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz';
    expect(validateSettings(url, `  ${publishable}\n`)).toEqual({ url, anonKey: publishable });
    expect(() => validateSettings(url, secret)).toThrowError(
      "That is a secret key (sb_secret_...): use the project's publishable key (sb_publishable_...) or its legacy anon key",
    );
    expect(() => validateSettings(url, ` ${secret} `)).toThrowError(/secret key \(sb_secret_\.\.\.\)/);
    // Only the secret prefix is refused: the server judges anything else (it answers 401).
    expect(validateSettings(url, 'sb_publishable_x').anonKey).toBe('sb_publishable_x');
  });
});
