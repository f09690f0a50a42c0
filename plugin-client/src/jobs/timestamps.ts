// Postgres timestamptz values carry microseconds ("...:40.877123+00:00"), and
// two updates of one job can fall within the same millisecond. Date.parse()
// keeps only milliseconds, so ordering compares exact microsecond values.

const TIMESTAMP_RE =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Microseconds since the epoch, or null when the text is not a timestamp. */
export function timestampMicros(text: string): number | null {
  const m = TIMESTAMP_RE.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z'] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms)) return null;
  let offsetMinutes = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0'));
  }
  const micros = Number((frac + '000000').slice(0, 6));
  // Max ~1.7e15 µs for current dates: well inside Number's exact integer range.
  return (ms - offsetMinutes * 60_000) * 1000 + micros;
}

/** <0 if a is older, >0 if newer, 0 if equal; null if either is unparseable. */
export function compareTimestamps(a: string, b: string): number | null {
  const x = timestampMicros(a);
  const y = timestampMicros(b);
  if (x === null || y === null) return null;
  return Math.sign(x - y);
}
