import { z } from 'zod';

/**
 * Events: the one stream every long-running flow produces. The Python engine writes them as JSON
 * lines on stdout (rank 0 only); TS flows emit the same shapes; the CLI renders them as progress
 * bars or `--json` lines and the HTTP app stores and streams them over SSE.
 */
export const ProgressEvent = z.strictObject({
  type: z.literal('progress'),
  /** What is progressing, e.g. `train`, `prepare`, `load-target`. */
  task: z.string(),
  done: z.number().nonnegative(),
  total: z.number().nonnegative().optional(),
  /** Unit of done/total, e.g. `step`, `record`, `token`. */
  unit: z.string().optional(),
  /** Short free text shown after the bar (e.g. `loss 2.31 acc_0 0.42`). */
  message: z.string().optional(),
});

export const MetricsEvent = z.strictObject({
  type: z.literal('metrics'),
  split: z.enum(['train', 'eval', 'bench']),
  step: z.number().int().nonnegative(),
  epoch: z.number().nonnegative().optional(),
  values: z.record(z.string(), z.number()),
});

export const CheckpointEvent = z.strictObject({
  type: z.literal('checkpoint'),
  step: z.number().int().nonnegative(),
  path: z.string(),
});

export const LogEvent = z.strictObject({
  type: z.literal('log'),
  level: z.enum(['debug', 'info', 'warn', 'error']),
  message: z.string(),
});

export const ArtifactEvent = z.strictObject({
  type: z.literal('artifact'),
  /** e.g. `manifest`, `rejects`, `draft`, `report`, `plot`, `metrics`. */
  kind: z.string(),
  path: z.string(),
  description: z.string().optional(),
});

export const ErrorEvent = z.strictObject({
  type: z.literal('error'),
  code: z.string().default('EAGLET_ENGINE_ERROR'),
  message: z.string(),
  hint: z.string().optional(),
  traceback: z.string().optional(),
});

export const DoneEvent = z.strictObject({
  type: z.literal('done'),
  /** True when the work stopped early on request (SIGINT/SIGTERM/cancel) after a clean checkpoint. */
  stopped: z.boolean().default(false),
  /** Command-specific result (each command documents and validates its own). */
  result: z.unknown().optional(),
});

export const EagletEvent = z.discriminatedUnion('type', [
  ProgressEvent,
  MetricsEvent,
  CheckpointEvent,
  LogEvent,
  ArtifactEvent,
  ErrorEvent,
  DoneEvent,
]);

export type ProgressEvent = z.infer<typeof ProgressEvent>;
export type MetricsEvent = z.infer<typeof MetricsEvent>;
export type CheckpointEvent = z.infer<typeof CheckpointEvent>;
export type LogEvent = z.infer<typeof LogEvent>;
export type ArtifactEvent = z.infer<typeof ArtifactEvent>;
export type ErrorEvent = z.infer<typeof ErrorEvent>;
export type DoneEvent = z.infer<typeof DoneEvent>;
export type EagletEvent = z.infer<typeof EagletEvent>;
export type EagletEventInput = z.input<typeof EagletEvent>;

/** Where a flow sends its events. Flows never print; their callers decide how to show events. */
export type EventSink = (event: EagletEvent) => void;
