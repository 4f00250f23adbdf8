/**
 * SimCLR's augmentation recipe (Chen et al. 2020; the one SAS uses, sas.md §2) on encoded image bytes
 * with sharp: random resized crop (area 8–100%, aspect 3/4–4/3), horizontal flip (p = 0.5), colour
 * jitter of strength s = 0.5 (brightness, contrast, saturation 0.8·s, hue 0.2·s; p = 0.8) and
 * greyscale (p = 0.2). Returns lossless PNG bytes that any encoder's `prepareImage` takes, so the
 * crop is then resized exactly as a plain image would be. Draws come from the given generator, so a
 * view is reproducible. [R] Contrast blends towards mid-grey (torchvision uses the image's mean grey)
 * and the jitter order is fixed (torchvision shuffles it).
 */
import sharp from 'sharp';

export const SIMCLR_STRENGTH = 0.5;

export async function simclrView(
  bytes: Buffer,
  random: () => number,
  strength = SIMCLR_STRENGTH,
): Promise<Buffer> {
  const base = sharp(bytes, { failOn: 'error' }).rotate();
  const { width, height } = await base
    .metadata()
    .then((m) =>
      (m.orientation ?? 1) >= 5
        ? { width: m.height!, height: m.width! }
        : { width: m.width!, height: m.height! },
    );
  const crop = randomResizedCrop(width, height, random);
  let image = sharp(await base.toBuffer()).extract(crop);
  if (random() < 0.5) image = image.flop();
  const uniform = (spread: number) => 1 - spread + 2 * spread * random();
  if (random() < 0.8) {
    const contrast = uniform(0.8 * strength);
    image = image
      .modulate({
        brightness: uniform(0.8 * strength),
        saturation: uniform(0.8 * strength),
        hue: Math.round((random() * 2 - 1) * 0.2 * strength * 360),
      })
      .linear(contrast, 128 * (1 - contrast));
  }
  if (random() < 0.2) image = image.grayscale();
  return image.toColourspace('srgb').png({ compressionLevel: 0 }).toBuffer();
}

/** torchvision's RandomResizedCrop parameters: 10 tries, then the central crop with the aspect clamped. */
export function randomResizedCrop(
  width: number,
  height: number,
  random: () => number,
  scale: [number, number] = [0.08, 1],
  ratio: [number, number] = [3 / 4, 4 / 3],
): { left: number; top: number; width: number; height: number } {
  const area = width * height;
  const [logLow, logHigh] = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * (scale[0] + (scale[1] - scale[0]) * random());
    const aspect = Math.exp(logLow + (logHigh - logLow) * random());
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      return {
        left: Math.floor(random() * (width - w + 1)),
        top: Math.floor(random() * (height - h + 1)),
        width: w,
        height: h,
      };
    }
  }
  const inRatio = width / height;
  const [w, h] =
    inRatio < ratio[0]
      ? [width, Math.round(width / ratio[0])]
      : inRatio > ratio[1]
        ? [Math.round(height * ratio[1]), height]
        : [width, height];
  return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
}
