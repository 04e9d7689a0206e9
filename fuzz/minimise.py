#!/usr/bin/env python3
"""Minimise a committed corpus to a budget: fuzz/minimise.py TARGET MAX_NEW

`cargo fuzz cmin` keeps every input that adds a coverage feature, which after a long run is
a thousand files per target; the committed corpus stays small (under 300 files and 2 MB in
all). This runs libFuzzer's merge once to learn the features of every input of
fuzz/corpus/TARGET, keeps the generated seeds (`seed-*`) and kept findings (`found-*`), then
adds, greedily, the input that brings the most features not yet covered (the smaller one on a
tie) until MAX_NEW are added or nothing new is left, and deletes the rest. Build the target
first (fuzz/run.sh or `cargo fuzz build -s none`).
"""
import os
import subprocess
import sys
import tempfile

FLAGS = {
    "wire_decode": ["-max_len=8192", "-timeout=10", "-rss_limit_mb=2048"],
    "change_info": ["-max_len=4096", "-timeout=10", "-rss_limit_mb=2048"],
    "push_path": ["-max_len=16384", "-timeout=60", "-rss_limit_mb=4096"],
    "push_changes": ["-max_len=16384", "-timeout=60", "-rss_limit_mb=4096"],
}


def main():
    target, max_new = sys.argv[1], int(sys.argv[2])
    here = os.path.dirname(os.path.abspath(__file__))
    corpus = os.path.join(here, "corpus", target)
    binary = os.path.join(here, "target", "x86_64-unknown-linux-gnu", "release", target)
    with tempfile.TemporaryDirectory() as tmp:
        control = os.path.join(tmp, "control")
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        subprocess.run(
            [binary, "-merge=1", f"-merge_control_file={control}", *FLAGS[target], out, corpus],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        lines = open(control).read().splitlines()
    n = int(lines[0])
    files = lines[2 : 2 + n]
    features = {}
    for line in lines[2 + n :]:
        parts = line.split()
        if parts and parts[0] == "FT":
            features[int(parts[1])] = set(map(int, parts[2:]))
    kept, covered = set(), set()
    for i, path in enumerate(files):
        if os.path.basename(path).startswith(("seed-", "found-")):
            kept.add(i)
            covered |= features.get(i, set())
    added = 0
    while added < max_new:
        best, gain = None, 0
        for i, fts in features.items():
            if i in kept:
                continue
            g = len(fts - covered)
            if g > gain or (g == gain and g > 0 and os.path.getsize(files[i]) < os.path.getsize(files[best])):
                best, gain = i, g
        if best is None:
            break
        kept.add(best)
        covered |= features[best]
        added += 1
    removed = 0
    for i, path in enumerate(files):
        if i not in kept:
            os.remove(path)
            removed += 1
    total = len(set().union(*features.values())) if features else 0
    print(
        f"{target}: kept {len(kept)} files ({added} besides seeds and findings), removed "
        f"{removed}; they cover {len(covered)} of {total} features"
    )


if __name__ == "__main__":
    main()
