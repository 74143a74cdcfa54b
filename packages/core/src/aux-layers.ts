import { EagletError } from './errors.js';
import type { AuxLayerIds } from './interfaces/target-model.js';

/**
 * vLLM's default Eagle3 aux layers (`SupportsEagle3.get_eagle3_default_aux_hidden_state_layers`):
 * the hidden states after 2, L//2 and L-3 decoder layers. The one place this rule is written; a
 * target plugin names it as its `auxLayers` (or declares its own). Refuses depths that give fewer
 * than three distinct layers.
 */
export function eagle3DefaultAuxLayers(numLayers: number): AuxLayerIds {
  const ids: AuxLayerIds = [2, Math.floor(numLayers / 2), numLayers - 3];
  if (!Number.isInteger(numLayers) || numLayers < 6 || new Set(ids).size < 3)
    throw new EagletError(
      'EAGLET_TARGET_CONFIG',
      `a ${numLayers}-layer target has no three distinct Eagle3 aux layers (vLLM's default ${ids.join(', ')})`,
      {
        hint: 'Eagle3 taps three distinct layers; set draftConfig.eagle_aux_hidden_state_layer_ids yourself',
      },
    );
  return ids;
}

/** Refuses aux layer ids outside 0..numLayers (the state after k layers) or not distinct. */
export function checkAuxLayerIds(ids: readonly number[], numLayers: number, where: string): AuxLayerIds {
  if (
    ids.length !== 3 ||
    new Set(ids).size !== 3 ||
    ids.some((k) => !Number.isInteger(k) || k < 0 || k > numLayers)
  )
    throw new EagletError(
      'EAGLET_CONFIG_INVALID',
      `${where}: aux layer ids [${ids.join(', ')}] must be three distinct integers in 0..${numLayers} (vLLM's numbering: the state after k of the target's ${numLayers} layers)`,
    );
  return [ids[0]!, ids[1]!, ids[2]!];
}
