#!/usr/bin/env python3
"""Converts OpenCV's frontal-face Haar cascade (Debian package `opencv-data`) into the compact
text form wanprep embeds (`assets/face-cascade.txt`, read by `src/quality/face.rs`).

Deterministic: the same XML gives the same bytes. Run: python3 scripts/make-cascade.py
(after `apt-get install opencv-data`). Only stump (depth-1) classifiers over upright
rectangles are written; anything else is refused, so the evaluator never meets it.

Format (whitespace-separated numbers after the licence header lines starting with '#'):
  haar W H NSTAGES NFEATURES
  per stage:   NWEAK STAGE_THRESHOLD, then per weak classifier: FEATURE THRESHOLD LEFT RIGHT
  per feature: NRECTS, then per rect: X Y W H WEIGHT
"""
import re
import sys
import xml.etree.ElementTree as ET

SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"
DST = sys.argv[2] if len(sys.argv) > 2 else "assets/face-cascade.txt"

text = open(SRC, encoding="utf-8").read()
licence = re.search(r"<!--(.*?)-->", text, re.S).group(1)
root = ET.fromstring(text).find("cascade")
assert root.findtext("stageType").strip() == "BOOST" and root.findtext("featureType").strip() == "HAAR"
w, h = int(root.findtext("width")), int(root.findtext("height"))
out = ["# Converted by scripts/make-cascade.py from OpenCV's " + SRC.rsplit("/", 1)[-1] + " (Debian opencv-data)."]
out += ["#" + line.rstrip() for line in licence.strip("\n").split("\n")]
stages = root.find("stages").findall("_")
features = root.find("features").findall("_")
out.append(f"haar {w} {h} {len(stages)} {len(features)}")
for st in stages:
    weak = st.find("weakClassifiers").findall("_")
    out.append(f"{len(weak)} {float(st.findtext('stageThreshold')):.9g}")
    for wc in weak:
        nodes = wc.findtext("internalNodes").split()
        leaves = wc.findtext("leafValues").split()
        if len(nodes) != 4 or len(leaves) != 2 or nodes[0] != "0" or nodes[1] != "-1":
            sys.exit("only stump classifiers are supported")
        out.append(f"{int(nodes[2])} {float(nodes[3]):.9g} {float(leaves[0]):.9g} {float(leaves[1]):.9g}")
for f in features:
    if f.findtext("tilted", "0").strip() not in ("0", ""):
        sys.exit("tilted features are not supported")
    rects = [r.text.split() for r in f.find("rects").findall("_")]
    out.append(str(len(rects)) + " " + " ".join(f"{int(x)} {int(y)} {int(rw)} {int(rh)} {float(wt):g}" for x, y, rw, rh, wt in rects))
open(DST, "w", encoding="utf-8").write("\n".join(out) + "\n")
print(f"{DST}: {len(stages)} stages, {len(features)} features")
