import { describe, expect, it } from 'vitest';
import { JobFailedError, NetworkError, RateLimitError, ValidationError } from '../../src/jobs/errors';
import { RelayTimeoutError } from '../../src/shared/rpc';
import { describeError } from '../../src/ui/messages';
import { editText, editTrees, parseImageResult, summarizeApplyDesign } from '../../src/ui/results';
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
    expect(parseImageResult({ path: 'u1/j1.png', mime_type: 'image/png', width: 512, height: 512, signed_url: 'https://s' })).toEqual({
      path: 'u1/j1.png',
      mimeType: 'image/png',
      width: 512,
      height: 512,
      signedUrl: 'https://s',
    });
    expect(() => parseImageResult({ mime_type: 'image/png' })).toThrowError(/storage path/);
  });

  it('extracts edit text and variant trees', () => {
    expect(editText({ text: 'final' }, 'streamed')).toBe('final');
    expect(editText({ edits: [{ title: 'Bigger CTA', description: 'raise to 48px' }, 'Darker header'] }, '')).toBe(
      '1. Bigger CTA — raise to 48px\n2. Darker header',
    );
    expect(editText({}, 'streamed')).toBe('streamed');
    const tree = { type: 'FRAME', name: 'v1' };
    expect(editTrees({ variants: [{ tree }, tree, { nope: 1 }] })).toEqual([tree, tree]);
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
    expect(() => validateSettings('http://localhost:54321', '  ')).toThrowError(/anon key/);
  });
});
