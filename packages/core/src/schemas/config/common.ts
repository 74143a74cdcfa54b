import { z } from 'zod';

/** A non-empty path string (file or folder); resolved against the config file's folder by the loader. */
export const PathString = z.string().min(1, 'path is empty');

/** Device placement for engine work. `auto` picks CUDA when present. */
export const Device = z.enum(['auto', 'cpu', 'cuda']);
export type Device = z.infer<typeof Device>;

export const Seed = z.number().int().nonnegative().default(0);
