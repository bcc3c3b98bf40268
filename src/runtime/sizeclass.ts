// Size classes for the GPU buffer pools (webgpu and cuda): powers of two up to 1 MiB, then steps of
// an eighth of the power of two below, so a pooled buffer wastes at most 12.5% above 1 MiB.

export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 4) * 4);
  if (b <= 1 << 20) return 2 ** Math.ceil(Math.log2(b));
  const step = 2 ** Math.floor(Math.log2(b)) / 8;
  return Math.ceil(b / step) * step;
}
