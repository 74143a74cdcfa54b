import type { RegisterFunction } from '@eaglet/core';
import { register as formats } from '@eaglet/formats';
// model-agnostic: allow (the composition root lists the target plugins eaglet ships)
import { register as hfChat } from '@eaglet/hf-chat';
// model-agnostic: allow (the composition root lists the target plugins eaglet ships)
import { register as qwen25Omni } from '@eaglet/qwen2.5-omni';
// model-agnostic: allow (the composition root lists the target plugins eaglet ships)
import { register as qwen2Audio } from '@eaglet/qwen2-audio';
import { register as torchBackend } from '@eaglet/torch-backend';
import { register as vllmBackend } from '@eaglet/vllm-backend';

/**
 * What ships with eaglet, in load order. The one explicit registration point: each entry is a
 * plugin package's `register` function, loaded exactly like a user's plugin.
 */
export const BUILTIN_PLUGINS: ReadonlyArray<{ module: string; register: RegisterFunction }> = [
  { module: '@eaglet/formats', register: formats },
  // model-agnostic: allow (the composition root lists the target plugins eaglet ships)
  { module: '@eaglet/qwen2-audio', register: qwen2Audio },
  // model-agnostic: allow (the composition root lists the target plugins eaglet ships)
  { module: '@eaglet/qwen2.5-omni', register: qwen25Omni },
  // model-agnostic: allow (the composition root lists the target plugins eaglet ships)
  { module: '@eaglet/hf-chat', register: hfChat },
  { module: '@eaglet/torch-backend', register: torchBackend },
  { module: '@eaglet/vllm-backend', register: vllmBackend },
];
