// The NCCL expert-parallel group (one rank per process, started by `hotpaths launch`): counts and rows
// moved with grouped ncclSend/ncclRecv on the cuda backend's stream; libnccl is loaded at run time
// (dlopen) by the addon, so the addon builds and loads where NCCL is absent.
//
// CONTRACT STUB (2026-11-21): filled in by the moe-cuda work; src/ops/moe.ts's ncclGroup() calls it.

import { HotpathsError } from '../errors.js';
import type { ExpertGroup } from '../ops/moe.js';

/** Joins the NCCL group described by HOTPATHS_RANK, HOTPATHS_WORLD_SIZE and HOTPATHS_NCCL_ID (set by `hotpaths launch`). */
export async function createNcclGroup(): Promise<ExpertGroup> {
  throw new HotpathsError('E_NOT_IMPLEMENTED', 'moe.ncclGroup(): not implemented yet');
}
