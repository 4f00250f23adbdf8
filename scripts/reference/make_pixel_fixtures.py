#!/usr/bin/python3
"""Reference pixels for CLIP image preprocessing: test/fixtures/reference/pixels/.

Writes a small set of source images (CIFAR-10 JPEGs from test/fixtures/cifar-mini, plus generated PNG,
JPEG, WebP and grey images at sizes that exercise enlargement, reduction, odd crops and no-ops) and,
for each, the reference pipelines' 224 x 224 RGB result before ToTensor/normalisation (a PNG, so exact):

  openai/  OpenAI's clip.py `_transform(224)` up to `_convert_image_to_rgb`: torchvision
           Resize(224, BICUBIC) (Pillow's resampler) + CenterCrop(224, round half to even).
  hf/      Hugging Face CLIPImageProcessor's steps: convert to RGB, Pillow bicubic resize of the
           shortest edge to 224 (long side truncated), centre crop with the offset floored.
           (transformers is not installable offline; these are its documented steps, run on Pillow.)

Run from the repository root (Debian: apt-get install python3-pil python3-numpy python3-torchvision):
    /usr/bin/python3 scripts/reference/make_pixel_fixtures.py
With a checkout of github.com/openai/CLIP on PYTHONPATH the `openai` set is made by clip.py's own
`_transform`; without one, by the same torchvision Compose (recorded as `generator` in index.json).
"""
import io
import json
import math
import os
import sys

import numpy as np
import torchvision
from PIL import Image
from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Resize

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'reference', 'pixels')
CIFAR = os.path.join(ROOT, 'test', 'fixtures', 'cifar-mini', 'folder')
N_PX = 224


def openai_transform():
    """clip.py's `_transform(224)` without ToTensor/Normalize (they are exact arithmetic on these bytes)."""
    try:
        from clip.clip import _transform  # noqa: WPS433 (optional reference checkout)

        steps = _transform(N_PX).transforms
        return Compose(steps[:3]), 'openai/CLIP clip.py _transform'
    except Exception:  # no checkout, or its other imports (tqdm, ftfy) missing
        to_rgb = lambda image: image.convert('RGB')  # noqa: E731 (clip.py's _convert_image_to_rgb)
        return (
            Compose([Resize(N_PX, interpolation=InterpolationMode.BICUBIC), CenterCrop(N_PX), to_rgb]),
            'torchvision Compose equal to clip.py _transform',
        )


def hf_clip_processor(image):
    """CLIPImageProcessor (do_convert_rgb, shortest_edge 224, bicubic, crop 224) on Pillow."""
    image = image.convert('RGB')
    w, h = image.size
    short, long = (w, h) if w <= h else (h, w)
    if short != N_PX:
        new_short, new_long = N_PX, int(N_PX * long / short)
        w, h = (new_short, new_long) if w <= h else (new_long, new_short)
        image = image.resize((w, h), Image.BICUBIC)
    top, left = (h - N_PX) // 2, (w - N_PX) // 2
    return image.crop((left, top, left + N_PX, top + N_PX))


def generated(width, height, seed, mode='RGB'):
    """Smooth gradients, a sharp-edged disc and a fine checkerboard: resampling offsets show up clearly."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 127 + 120 * np.sin(x / max(width, 1) * 2 * math.pi * 1.5 + seed)
    g = 255 * y / max(height - 1, 1)
    disc = ((x - width * 0.4) ** 2 + (y - height * 0.55) ** 2) < (min(width, height) * 0.3) ** 2
    b = np.where(disc, 230.0, 25.0)
    checker = ((x // 3 + y // 3) % 2 == 0) & (x < width * 0.3) & (y < height * 0.3)
    g = np.where(checker, 255.0 - g, g)
    rgb = np.stack([r, g, b], axis=-1)
    image = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), 'RGB')
    return image.convert('L') if mode == 'L' else image


def encoded(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def sources():
    """(name, file bytes, extension, lossless) for every fixture source."""
    for rel in ['frog/train000001.jpg', 'automobile/train000002.jpg', 'airplane/train000000.jpg', 'ship/train000009.jpg']:
        path = os.path.join(CIFAR, rel)
        if os.path.exists(path):
            with open(path, 'rb') as f:
                yield f'cifar-{os.path.basename(rel)[:-4]}', f.read(), 'jpg', False
    sizes = [(96, 64), (64, 96), (224, 224), (225, 224), (224, 225), (449, 224), (227, 300), (300, 200),
             (500, 375), (375, 500), (640, 480), (17, 301), (223, 223), (227, 224), (500, 374)]
    for i, (w, h) in enumerate(sizes):
        yield f'gen-{w}x{h}', encoded(generated(w, h, i), 'PNG'), 'png', True
    yield 'gen-500x375-q90', encoded(generated(500, 375, 40), 'JPEG', quality=90), 'jpg', False
    yield 'gen-1000x750-q90', encoded(generated(1000, 750, 43), 'JPEG', quality=90), 'jpg', False
    yield 'gen-96x64-webp', encoded(generated(96, 64, 41), 'WEBP', lossless=True), 'webp', True
    yield 'gen-300x200-grey', encoded(generated(300, 200, 42, 'L'), 'PNG'), 'png', True


def main():
    openai, generator = openai_transform()
    for sub in ['sources', 'openai', 'hf']:
        os.makedirs(os.path.join(OUT, sub), exist_ok=True)
    cases = []
    for name, data, ext, lossless in sources():
        with open(os.path.join(OUT, 'sources', f'{name}.{ext}'), 'wb') as f:
            f.write(data)
        image = Image.open(io.BytesIO(data))
        image.load()
        w, h = image.size
        openai(image).save(os.path.join(OUT, 'openai', f'{name}.png'))
        hf_clip_processor(image).save(os.path.join(OUT, 'hf', f'{name}.png'))
        short, long = (w, h) if w <= h else (h, w)
        resized = (w, h) if short == N_PX else (
            (N_PX, int(N_PX * long / short)) if w <= h else (int(N_PX * long / short), N_PX))
        cases.append({
            'name': name,
            'source': f'sources/{name}.{ext}',
            'size': [w, h],
            'mode': image.mode,
            'resized': list(resized),
            'lossless': lossless,
        })
    index = {
        'generator': generator,
        'pillow': Image.__version__,
        'torchvision': torchvision.__version__,
        'python': sys.version.split()[0],
        'cases': cases,
    }
    with open(os.path.join(OUT, 'index.json'), 'w') as f:
        json.dump(index, f, indent=1)
        f.write('\n')
    print(f'{len(cases)} cases -> {os.path.relpath(OUT, ROOT)} ({generator})')


if __name__ == '__main__':
    main()
