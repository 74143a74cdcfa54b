/**
 * Every parameter the user's original document (seed) names, and where it lives in eaglet:
 * the config schema and field, and the CLI flag. A test checks that every home exists and that
 * the defaults match the document's.
 */
// model-agnostic: allow (the name of the benchmark script in the user's document)
const BENCH_SCRIPT = 'vllm_offline_eagle3_qwen2_audio_bench.py';

export interface SeedParameter {
  /** The script in the user's document. */
  script:
    | 'generate_data_for_target_model.sh'
    | 'run_vllm_server.sh'
    | 'train_eagle3_audio_online.sh'
    | typeof BENCH_SCRIPT;
  /** The parameter as the document spells it. */
  name: string;
  /** Config schema and dotted field path. */
  home: `${'regenerate' | 'serve' | 'train' | 'bench'}.${string}`;
  /** The document's default, where it gives one. */
  default?: unknown;
}

export const SEED_PARAMETERS: readonly SeedParameter[] = [
  { script: 'generate_data_for_target_model.sh', name: 'DATA_NAME_OR_PATH', home: 'regenerate.data' },
  { script: 'generate_data_for_target_model.sh', name: 'OUTPUT_DIR', home: 'regenerate.outputDir' },
  { script: 'generate_data_for_target_model.sh', name: 'DATA_FORMAT', home: 'regenerate.format' },
  { script: 'generate_data_for_target_model.sh', name: 'DATA_SHARD_SIZE', home: 'regenerate.shardSize' },
  { script: 'generate_data_for_target_model.sh', name: 'BASE_PORT', home: 'regenerate.basePort' },
  { script: 'train_eagle3_audio_online.sh', name: 'TARGET_MODEL_NAME_OR_PATH', home: 'train.targetModel' },
  { script: 'train_eagle3_audio_online.sh', name: 'DRAFT_MODEL_CONFIG_PATH', home: 'train.draftConfig' },
  { script: 'train_eagle3_audio_online.sh', name: 'TRAIN_DATA_PATH', home: 'train.trainData' },
  { script: 'train_eagle3_audio_online.sh', name: 'EVAL_DATA_PATH', home: 'train.evalData' },
  { script: 'train_eagle3_audio_online.sh', name: 'OUTPUT_DIR', home: 'train.outputDir' },
  { script: 'train_eagle3_audio_online.sh', name: 'MODEL_MAX_LENGTH', home: 'train.maxLength' },
  { script: 'train_eagle3_audio_online.sh', name: 'CHAT_TEMPLATE_TYPE', home: 'train.chatTemplate' },
  { script: BENCH_SCRIPT, name: '--target_model', home: 'bench.targetModel' },
  { script: BENCH_SCRIPT, name: '--draft_model', home: 'bench.draftModel' },
  { script: BENCH_SCRIPT, name: '--use_eagle', home: 'bench.useEagle' },
  { script: BENCH_SCRIPT, name: '--output_file', home: 'bench.outputFile' },
  {
    script: BENCH_SCRIPT,
    name: '--test_data_path',
    home: 'bench.testDataPath',
  },
  {
    script: BENCH_SCRIPT,
    name: '--num_prompts',
    home: 'bench.numPrompts',
    default: 100,
  },
  {
    script: BENCH_SCRIPT,
    name: '--temp',
    home: 'bench.temperature',
    default: 0,
  },
  {
    script: BENCH_SCRIPT,
    name: '--max_model_len',
    home: 'bench.maxModelLen',
    default: 16384,
  },
  {
    script: BENCH_SCRIPT,
    name: '--output_len',
    home: 'bench.outputLen',
    default: 1024,
  },
  {
    script: BENCH_SCRIPT,
    name: '--max_num_seqs',
    home: 'bench.maxNumSeqs',
    default: 1,
  },
  {
    script: BENCH_SCRIPT,
    name: '--num_spec_tokens',
    home: 'bench.numSpecTokens',
    default: 2,
  },
  { script: BENCH_SCRIPT, name: '--tp', home: 'bench.tp', default: 1 },
  { script: BENCH_SCRIPT, name: '--seed', home: 'bench.seed' },
];
