// Poison mode: when on, every tensor a backend hands out from `empty()` is filled with 0xFF bytes
// (f32 NaN, bf16 NaN, i32 -1, fp8 0xFF, which no hotpaths kernel writes), so that a test can tell an
// element a kernel never wrote from one it did. Tests switch it on; it costs a fill per allocation.

let poison = false;

export function setPoison(on: boolean): void {
  poison = on;
}

export function poisonEnabled(): boolean {
  return poison;
}

/** The byte every poisoned tensor is filled with. */
export const POISON_BYTE = 0xff;
