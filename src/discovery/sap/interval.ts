/**
 * SAP timing (RFC 2974 §3.1, §4). Pure.
 *
 *   interval = max(300 s, 8 · ads · ad_size / limit)          ads on the group, ad_size bytes, limit bit/s
 *   offset   = rand(interval · 2/3) − interval/3              so the period varies by ±1/3
 *   tn       = tp + interval + offset                         tp: last transmission
 *
 * A listener forgets a session not heard for max(10 intervals, 1 h).
 */

export const RFC_MIN_INTERVAL_MS = 300_000;
export const DEFAULT_BANDWIDTH_BPS = 4000;
const HOUR_MS = 3_600_000;

/** Base announcement interval (ms) for `ads` announcements of `adSize` bytes on average. */
export function baseIntervalMs(ads: number, adSize: number, limitBps = DEFAULT_BANDWIDTH_BPS, minMs = RFC_MIN_INTERVAL_MS): number {
  return Math.max(minMs, ((8 * Math.max(1, ads) * Math.max(0, adSize)) / limitBps) * 1000);
}

/** Next transmission time from the last one `tp` (ms), with the ±1/3 jitter; `random` in [0, 1). */
export function nextTransmission(tp: number, intervalMs: number, random: () => number = Math.random): number {
  const offset = random() * ((intervalMs * 2) / 3) - intervalMs / 3;
  return tp + intervalMs + offset;
}

/** How long a listener keeps a session it no longer hears (§4, implicit timeout). */
export function sessionTimeoutMs(intervalMs: number): number {
  return Math.max(10 * intervalMs, HOUR_MS);
}
