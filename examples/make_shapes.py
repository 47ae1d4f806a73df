"""Writes a folder of coloured shapes, DIR/<shape>/*.png, to train a model of your own on."""

import argparse
import os

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")


def draw(shape, rng, size):
  """One RGB image: a shape of random colour, place and size on a random background."""
  image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.randint(0, 90, 3)))
  pen = ImageDraw.Draw(image)
  r = rng.randint(size // 5, size // 3)
  x, y = rng.randint(r, size - r, 2)
  colour = tuple(int(v) for v in rng.randint(120, 256, 3))
  if shape == "circle":
    pen.ellipse([x - r, y - r, x + r, y + r], fill=colour)
  elif shape == "square":
    pen.rectangle([x - r, y - r, x + r, y + r], fill=colour)
  else:
    pen.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
  return image


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("folder")
  parser.add_argument("--per_class", type=int, default=200)
  parser.add_argument("--size", type=int, default=32)
  args = parser.parse_args()
  rng = np.random.RandomState(0)
  for shape in SHAPES:
    os.makedirs(os.path.join(args.folder, shape), exist_ok=True)
    for i in range(args.per_class):
      draw(shape, rng, args.size).save(os.path.join(args.folder, shape, f"{i:04d}.png"))
  print(f"wrote {args.per_class * len(SHAPES)} images of {args.size}x{args.size} to "
        f"{args.folder}: {', '.join(SHAPES)}")


if __name__ == "__main__":
  main()
