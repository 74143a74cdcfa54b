import { existsSync, readFileSync } from 'node:fs';
import {
  checkAuxLayerIds,
  DraftConfig,
  type DraftConfigInput,
  EagletError,
  type TargetInfo,
  type TargetModel,
  type TrainConfig,
} from '@eaglet/core';

/**
 * The draft architecture, resolved in this one place: the target plugin's defaults for the
 * checkpoint, then the user's draftConfig fields, then the sizes the vocabulary mapping fixes,
 * then the aux layer ids (the user's, else the target's rule) and the target's width where it
 * differs from the draft's. A user field that contradicts the mapping or the target is refused.
 */
export function resolveDraftConfig(
  target: TargetModel,
  info: TargetInfo,
  options: {
    given?: Partial<DraftConfigInput>;
    vocab?: { draftVocabSize: number; vocabSize: number; source: string };
  } = {},
): DraftConfig {
  const given = options.given ?? {};
  const vocab = options.vocab;
  if (vocab) {
    for (const [key, value] of [
      ['draft_vocab_size', vocab.draftVocabSize],
      ['vocab_size', vocab.vocabSize],
    ] as const) {
      if (given[key] !== undefined && given[key] !== value)
        throw new EagletError(
          'EAGLET_CONFIG_INVALID',
          `draftConfig.${key} is ${given[key]} but ${vocab.source} holds a mapping of ${value}`,
          { hint: `drop ${key} from draftConfig (the mapping decides it) or rebuild the mapping` },
        );
    }
  }
  if (given.target_hidden_size !== undefined && given.target_hidden_size !== info.hiddenSize)
    throw new EagletError(
      'EAGLET_CONFIG_INVALID',
      `draftConfig.target_hidden_size is ${given.target_hidden_size} but the target's hidden size is ${info.hiddenSize}`,
      { hint: 'drop target_hidden_size from draftConfig (the target decides it)' },
    );
  const auxLayerIds = checkAuxLayerIds(
    given.eagle_aux_hidden_state_layer_ids ?? info.auxLayerIds,
    info.numLayers,
    'draftConfig.eagle_aux_hidden_state_layer_ids',
  );
  const merged = DraftConfig.safeParse({
    ...target.draftDefaults(info),
    ...given,
    ...(vocab ? { draft_vocab_size: vocab.draftVocabSize, vocab_size: vocab.vocabSize } : {}),
    eagle_aux_hidden_state_layer_ids: auxLayerIds,
  });
  if (!merged.success)
    throw new EagletError(
      'EAGLET_CONFIG_INVALID',
      `invalid draftConfig: ${merged.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const draft = merged.data;
  const { target_hidden_size: _, ...rest } = draft;
  return info.hiddenSize === draft.hidden_size ? rest : { ...rest, target_hidden_size: info.hiddenSize };
}

/** The user's draftConfig: inline fields, or the draft fields of a JSON file (a Hugging Face config.json). */
export function readDraftConfig(value: TrainConfig['draftConfig']): Partial<DraftConfigInput> {
  if (value === undefined) return {};
  if (typeof value !== 'string') return value;
  if (!existsSync(value))
    throw new EagletError('EAGLET_CONFIG_INVALID', `draftConfig: ${value} does not exist`);
  try {
    const body = JSON.parse(readFileSync(value, 'utf8')) as Record<string, unknown>;
    // A Hugging Face config.json carries fields eaglet does not model; keep the draft's own.
    const known = Object.keys(DraftConfig.shape);
    return Object.fromEntries(
      Object.entries(body).filter(([k]) => known.includes(k)),
    ) as Partial<DraftConfigInput>;
  } catch (e) {
    throw new EagletError(
      'EAGLET_CONFIG_INVALID',
      `draftConfig: ${value} is not valid JSON: ${(e as Error).message}`,
    );
  }
}
