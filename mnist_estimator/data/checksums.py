"""Published SHA-256 of MNIST and Fashion-MNIST: a wrong download or cache is named, not used."""

import hashlib
from typing import List, Mapping, Tuple

import numpy as np

# SHA-256 of the decompressed IDX files (a re-gzipped copy, such as Debian's, keeps them).
PUBLISHED = {
    "mnist": {
        "train-images-idx3-ubyte":
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte":
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte":
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte":
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte":
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte":
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte":
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte":
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}


def idx_sha256(array: np.ndarray) -> str:
  """SHA-256 of the IDX file that holds `array` (uint8 [N] labels or [N, H, W] images)."""
  array = np.ascontiguousarray(array, np.uint8)
  magic = 0x800 | array.ndim
  header = magic.to_bytes(4, "big") + np.array(array.shape, ">u4").tobytes()
  return hashlib.sha256(header + array.tobytes()).hexdigest()


def mismatches(name: str, arrays: Mapping[str, np.ndarray]) -> List[Tuple[str, str, str]]:
  """The files of `arrays` ({IDX base name: array}) that differ from the published `name`.

  Returns:
    [(base name, found SHA-256, published SHA-256)]; empty for a data set with no
    published digests (fonts, the sample).
  """
  published = PUBLISHED.get(name, {})
  found = ((base, idx_sha256(array)) for base, array in arrays.items() if base in published)
  return [(base, digest, published[base]) for base, digest in found
          if digest != published[base]]
