import type { Backend } from '../interfaces/backend.js';
import type { ChatTemplate } from '../interfaces/chat-template.js';
import type { DataFormat } from '../interfaces/data-format.js';
import type { TargetModel } from '../interfaces/target-model.js';

/**
 * One extension point of eaglet: the injection token its implementations are registered under in
 * the tsyringe container, the field of a plugin object that lists them, and the id that names one.
 */
export interface Contract<T> {
  /** Injection token: `container.resolveAll(contract.token)` lists every registered implementation. */
  readonly token: symbol;
  /** Field of `EagletPlugin` that lists implementations of this contract. */
  readonly field: 'targets' | 'templates' | 'formats' | 'backends';
  /** Human name, used in errors (`unknown target model "x"`). */
  readonly label: string;
  /** Error code suffix (`EAGLET_UNKNOWN_TARGET`). */
  readonly code: string;
  /** The id that names an implementation on the command line and in configs. */
  readonly id: (value: T) => string;
}

const contract = <T>(spec: Omit<Contract<T>, 'token'> & { token: string }): Contract<T> => ({
  ...spec,
  token: Symbol.for(spec.token),
});

/** Every extension point, by kind. Plugins contribute to these; flows and apps resolve them. */
export const CONTRACTS = {
  target: contract<TargetModel>({
    token: 'eaglet.TargetModel',
    field: 'targets',
    label: 'target model',
    code: 'TARGET',
    id: (t) => t.id,
  }),
  template: contract<ChatTemplate>({
    token: 'eaglet.ChatTemplate',
    field: 'templates',
    label: 'chat template',
    code: 'TEMPLATE',
    id: (t) => t.id,
  }),
  format: contract<DataFormat>({
    token: 'eaglet.DataFormat',
    field: 'formats',
    label: 'data format',
    code: 'FORMAT',
    id: (f) => f.name,
  }),
  backend: contract<Backend>({
    token: 'eaglet.Backend',
    field: 'backends',
    label: 'backend',
    code: 'BACKEND',
    id: (b) => b.id,
  }),
};

export type Kind = keyof typeof CONTRACTS;

/** The implementation type of a kind (`Impl<'target'>` is `TargetModel`). */
export type Impl<K extends Kind> = (typeof CONTRACTS)[K] extends Contract<infer T> ? T : never;

/** Injection tokens of the contracts, for code that talks to the container directly. */
export const TOKENS = {
  TargetModel: CONTRACTS.target.token,
  ChatTemplate: CONTRACTS.template.token,
  DataFormat: CONTRACTS.format.token,
  Backend: CONTRACTS.backend.token,
} as const;
