import type { TemperaturePolicy } from '@eaglet/core';

/** mulberry32 over (seed, index): a per-record number in [0, 1) that a resumed run reproduces. */
function unitHash(seed: number, index: number): number {
  let t = (seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** The sampling temperature of record `index` under a policy. */
export function temperatureFor(policy: number | TemperaturePolicy, seed: number, index: number): number {
  if (typeof policy === 'number') return policy;
  const u = unitHash(seed, index);
  switch (policy.kind) {
    case 'fixed':
      return policy.value;
    case 'uniform':
      return policy.min + (policy.max - policy.min) * u;
    case 'choice':
      return policy.values[Math.floor(u * policy.values.length)]!;
  }
}
