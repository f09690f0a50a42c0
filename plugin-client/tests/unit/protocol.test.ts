import { describe, expect, it } from 'vitest';
import { parseMainToUi, parseUiRequest, ProtocolError } from '../../src/shared/protocol';

describe('parseUiRequest', () => {
  it('returns null for non-requests and throws for malformed requests', () => {
    expect(parseUiRequest('hi')).toBeNull();
    expect(parseUiRequest({ type: 'storage-get' })).toBeNull();
    expect(parseUiRequest({ type: 'nope', requestId: '1', params: {} })).toBeNull();
    expect(() => parseUiRequest({ type: 'storage-get', requestId: '1', params: { key: '' } })).toThrowError(ProtocolError);
    expect(() => parseUiRequest({ type: 'place-image', requestId: '1', params: { bytes: [1, 2] } })).toThrowError(/Uint8Array/);
  });

  it('keeps only known params and fills defaults', () => {
    const req = parseUiRequest({
      type: 'place-image',
      requestId: '7',
      params: { bytes: new Uint8Array([1]), width: -3, height: 10, extra: true },
    });
    expect(req).toEqual({ type: 'place-image', requestId: '7', params: { bytes: new Uint8Array([1]), name: 'Generated image', height: 10 } });
  });
});

describe('parseMainToUi', () => {
  it('accepts responses and events only', () => {
    expect(parseMainToUi({ type: 'response', requestId: 'a', ok: true, result: 1 })).toEqual({
      type: 'response',
      requestId: 'a',
      ok: true,
      result: 1,
    });
    expect(parseMainToUi({ type: 'response', requestId: 'a', ok: false })).toMatchObject({ ok: false, error: 'unknown error' });
    expect(parseMainToUi({ type: 'response', requestId: 'a' })).toBeNull();
    expect(parseMainToUi({ type: 'event', event: 'selection-changed', selectionCount: 3 })).toMatchObject({ selectionCount: 3 });
    expect(parseMainToUi({ type: 'event', event: 'other' })).toBeNull();
  });
});
