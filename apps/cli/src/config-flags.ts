import { Flags } from '@oclif/core';

/** The part of a zod object schema the flag helpers read: each field's parse of "nothing given". */
interface ObjectSchema {
  shape: Record<string, { safeParse(value: unknown): { success: boolean; data?: unknown } }>;
}

/**
 * A flag description ending with the schema's default for `field`: flags carry no default of their
 * own (the schema applies it), so the help text reads it from the one place that defines it.
 */
export function withDefault(schema: ObjectSchema, field: string, text: string): string {
  const parsed = schema.shape[field]?.safeParse(undefined);
  return parsed?.success && parsed.data !== undefined
    ? `${text} (default ${JSON.stringify(parsed.data)})`
    : text;
}

/** `--backend-option key=value`: settings only the chosen backend understands. */
export const backendOptionFlag = Flags.string({
  description:
    "a setting of the chosen backend, key=value (value parsed as JSON where it parses; key.path for nested ones), repeatable; e.g. cpuThreads=1 (torch), gpuMemoryUtilization=0.8 (vllm); see the backend plugin's options",
  multiple: true,
});

/**
 * Run-config overrides (`backendOptions.key=value`) for the backend options given on the command
 * line, the deprecated spellings first so that `--backend-option` wins over them.
 */
export function backendOptionOverrides(
  options: readonly string[] | undefined,
  deprecated: Record<string, unknown> = {},
): string[] {
  return [
    ...Object.entries(deprecated)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `backendOptions.${key}=${JSON.stringify(value)}`),
    ...(options ?? []).map((o) => `backendOptions.${o}`),
  ];
}
