const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** SPEC 2: a duration is seconds (a number) or a string with a unit ("90s", "10m", "1h30m"). Returns seconds. */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0)
      throw new Error(`expected a non-negative number of seconds, got ${value}`);
    return value;
  }
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const pattern = /(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    total += Number(match[1]) * (UNITS[match[2]!] ?? 0);
    consumed = pattern.lastIndex;
  }
  if (consumed === 0 || consumed !== text.length) {
    throw new Error(`expected seconds or a duration like "90s", "10m", "1h30m", got "${value}"`);
  }
  return total;
}

/** `"02:00-05:00"` local time; a window may wrap midnight ("22:00-04:00"). Minutes since midnight. */
export interface TimeWindow {
  startMinute: number;
  endMinute: number;
}

export function parseWindow(value: string): TimeWindow {
  const match = /^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$/.exec(value);
  if (!match) throw new Error(`expected a window like "02:00-05:00", got "${value}"`);
  const [startHour, startMin, endHour, endMin] = match.slice(1).map(Number) as [number, number, number, number];
  if (startHour > 24 || endHour > 24 || startMin > 59 || endMin > 59)
    throw new Error(`invalid time in window "${value}"`);
  return { startMinute: startHour * 60 + startMin, endMinute: endHour * 60 + endMin };
}

export function isInsideWindow(window: TimeWindow | undefined, date: Date): boolean {
  if (!window) return true;
  const minute = date.getHours() * 60 + date.getMinutes();
  const { startMinute, endMinute } = window;
  if (startMinute === endMinute) return true;
  return startMinute < endMinute
    ? minute >= startMinute && minute < endMinute
    : minute >= startMinute || minute < endMinute;
}
