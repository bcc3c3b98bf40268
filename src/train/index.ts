// The trainer's public surface (Node only: checkpoints, metrics and the report write files).
// `hotpaths train` is a thin CLI over runTraining; docs/TRAIN.md describes the pieces.

export { runTraining, readCheckpoint, type RunOptions, type RunResult, type RunEvent } from './loop.js';
export { Trainer, AdamW, supervisedStep, clipGradients, updateBiases, type SftMetrics, type GrpoMetrics, type GrpoBatch, type EvalResult, type TrainerState } from './trainer.js';
export { Model, initParams, initBiases, parameterShapes, isMoeLayer, type ModelConfig, type MoeConfig, type Params, type ForwardResult, type DecodeState } from './model.js';
export { sampleCompletions, completionOf, type SampleOptions, type Samples } from './sampling.js';
export { defaultConfig, defaultModel, type TrainConfig, type GrpoConfig, type SftConfig, type AdamConfig } from './config.js';
export { judge, judgeText, REWARD_CORRECT, REWARD_FORMAT, type Judgement } from './rewards.js';
export { TASK_NAMES, createTask, arithmeticTask, countdownTask, evaluateExpression, type Task, type Problem, type TaskName } from './tasks/index.js';
export * as tokenizer from './tokenizer.js';
export { Rng, type RngState } from './rng.js';
export { encodeSafetensors, decodeSafetensors, readSafetensors, writeSafetensors, writeFileAtomic, type StTensor, type StDType } from './checkpoint.js';
export { MetricsLog, readMetrics, type MetricRecord } from './metrics.js';
export { renderReport, writeReport, type ReportInput } from './report.js';
export { measureThroughput, type ThroughputOptions, type ThroughputResult } from './throughput.js';
export { chooseTrainBackend, missingFamilies } from './backend.js';
