// The tasks by name (what `hotpaths train --task` accepts).

import { arithmeticTask } from './arithmetic.js';
import { countdownTask } from './countdown.js';
import type { Task } from './task.js';

export type { Problem, Task } from './task.js';
export { arithmeticTask } from './arithmetic.js';
export { countdownTask, evaluateExpression } from './countdown.js';

export const TASK_NAMES = ['arithmetic', 'countdown'] as const;
export type TaskName = (typeof TASK_NAMES)[number];

/** The task `name` with its default difficulty (the options are part of the run's config). */
export function createTask(name: TaskName, opts: Record<string, unknown> = {}): Task {
  if (name === 'arithmetic') return arithmeticTask(opts);
  if (name === 'countdown') return countdownTask(opts);
  throw new Error(`task: expected one of ${TASK_NAMES.join(', ')}, got ${JSON.stringify(name)}`);
}
