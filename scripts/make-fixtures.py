#!/usr/bin/python3
"""Regenerates fixtures/ deterministically.

Needs Debian 12's python3-pil (Pillow 9.4) and ffmpeg 5.1 (`apt-get install python3-pil ffmpeg`).
Run from the repository root: /usr/bin/python3 scripts/make-fixtures.py
Every file is small; large cases (> 5 MB, > 200 MB) are built by the tests at run time.
"""
import os
import struct
import subprocess
import sys

from PIL import Image, ImageDraw

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
IMG = os.path.join(ROOT, "image")
VID = os.path.join(ROOT, "video")
OTHER = os.path.join(ROOT, "other")


def pattern(w, h, mode="RGB"):
    """A deterministic picture with edges (so JPEG/WEBP have real entropy-coded data)."""
    im = Image.new("RGB", (w, h), (40, 90, 160))
    d = ImageDraw.Draw(im)
    step = max(8, min(w, h) // 12)
    for i in range(0, w + h, step):
        d.line([(i, 0), (i - h, h)], fill=((i * 7) % 256, (i * 3) % 256, 200), width=3)
    d.rectangle([w // 4, h // 4, w * 3 // 4, h * 3 // 4], outline=(250, 250, 0), width=4)
    d.ellipse([w // 3, h // 3, w * 2 // 3, h * 2 // 3], fill=(220, 60, 60))
    if mode == "RGBA":
        im = im.convert("RGBA")
        im.putalpha(Image.linear_gradient("L").resize((w, h)))
        return im
    return im.convert(mode) if mode != "RGB" else im


def exif_orientation(o):
    """A minimal little-endian EXIF (TIFF) blob with only the Orientation tag."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, o, 0) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd


def png_chunk(ctype, data):
    import zlib
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF)


def insert_png_chunk_after_ihdr(path, ctype, data):
    b = open(path, "rb").read()
    ihdr_end = 8 + 8 + 13 + 4
    open(path, "wb").write(b[:ihdr_end] + png_chunk(ctype, data) + b[ihdr_end:])


def save(im, name, **kw):
    path = os.path.join(IMG, name)
    im.save(path, **kw)
    return path


def truncate(src, dst, keep):
    b = open(src, "rb").read()
    n = keep if isinstance(keep, int) else int(len(b) * keep)
    open(dst, "wb").write(b[:n])


def images():
    os.makedirs(IMG, exist_ok=True)
    save(pattern(800, 600), "ok_800x600.jpg", quality=85)
    save(pattern(800, 600), "ok_progressive_800x600.jpg", quality=85, progressive=True)
    save(pattern(800, 600, "L"), "ok_gray_800x600.jpg", quality=85)
    save(pattern(800, 600), "ok_800x600.png", optimize=False)
    gray16 = pattern(400, 300, "L").point(lambda v: v * 256, "I").convert("I;16")
    save(gray16, "ok_gray16_400x300.png")
    save(pattern(300, 300).convert("P", palette=Image.ADAPTIVE, colors=16), "ok_palette_300x300.png")
    save(pattern(320, 240), "ok_320x240.bmp")
    save(pattern(320, 240).convert("P", palette=Image.ADAPTIVE, colors=64), "ok_palette_320x240.bmp")
    save(pattern(800, 600), "ok_lossy_800x600.webp", quality=80, method=4)
    save(pattern(400, 300), "ok_lossless_400x300.webp", lossless=True)
    save(pattern(400, 300, "RGBA"), "ok_alpha_400x300.webp", quality=80)
    frames = [pattern(400, 300), pattern(400, 300).rotate(180)]
    frames[0].save(os.path.join(IMG, "animated_400x300.webp"), save_all=True, append_images=frames[1:], duration=100, loop=0)
    top_down_bmp(pattern(240, 200), os.path.join(IMG, "ok_topdown_240x200.bmp"))

    # Boundaries: flat colour keeps even 4096-wide PNGs tiny.
    for w, h in [(199, 300), (200, 300), (300, 199), (4096, 1500), (4097, 1500), (1500, 4097),
                 (600, 200), (601, 200), (200, 600), (200, 601)]:
        Image.new("RGB", (w, h), (90, 120, 150)).save(os.path.join(IMG, f"dims_{w}x{h}.png"))
    save(pattern(400, 300), "lowres_400x300.jpg", quality=80)

    # EXIF orientation 6 (rotate 90 CW to display): stored 800x600, displayed 600x800.
    save(pattern(800, 600), "exif_orient6_800x600.jpg", quality=85, exif=b"Exif\x00\x00" + exif_orientation(6))
    p = save(pattern(600, 400), "exif_orient6_600x400.png")
    insert_png_chunk_after_ihdr(p, b"eXIf", exif_orientation(6))
    save(pattern(600, 400), "exif_orient8_600x400.webp", quality=80, exif=b"Exif\x00\x00" + exif_orientation(8))

    # Recognised but not accepted.
    save(pattern(300, 300).convert("P", palette=Image.ADAPTIVE, colors=32), "not_accepted_300x300.gif")
    save(pattern(300, 300), "not_accepted_300x300.tif", compression="tiff_lzw")

    # Extension lies.
    save(pattern(400, 300), "png_content_named.jpg", format="PNG")
    save(pattern(400, 300), "jpeg_content_named.png", format="JPEG", quality=80)

    # Damage.
    ok_jpg = os.path.join(IMG, "ok_800x600.jpg")
    truncate(ok_jpg, os.path.join(IMG, "truncated_half.jpg"), 0.5)
    truncate(ok_jpg, os.path.join(IMG, "truncated_no_eoi.jpg"), os.path.getsize(ok_jpg) - 2)
    ok_png = os.path.join(IMG, "ok_800x600.png")
    truncate(ok_png, os.path.join(IMG, "truncated_half.png"), 0.5)
    b = bytearray(open(ok_png, "rb").read())
    idat = b.index(b"IDAT")
    b[idat + 40] ^= 0xFF
    open(os.path.join(IMG, "bad_crc.png"), "wb").write(bytes(b))
    truncate(os.path.join(IMG, "ok_lossy_800x600.webp"), os.path.join(IMG, "truncated_half.webp"), 0.5)
    truncate(os.path.join(IMG, "ok_palette_320x240.bmp"), os.path.join(IMG, "truncated_half.bmp"), 0.5)

    # Other encoders: ImageMagick (libjpeg-turbo, libpng, its own BMP writer) and libvips.
    def im(args, name):
        subprocess.run(["convert"] + args + [os.path.join(IMG, name)], check=True)
    for fmt in ["bmp3", "bmp4", "bmp5"]:
        im(["-size", "160x120", "gradient:red-blue", "-define", f"bmp:format={fmt}"], f"im_{fmt}_160x120.bmp")
    im(["-size", "640x480", "gradient:red-blue", "-interlace", "Plane", "-quality", "80",
        "-define", "jpeg:restart-interval=4"], "im_progressive_restart_640x480.jpg")
    im(["-size", "640x480", "gradient:red-blue", "-colorspace", "CMYK", "-quality", "80"], "im_cmyk_640x480.jpg")
    im(["-size", "400x300", "gradient:red-blue", "-depth", "16", "-strip"], "im_rgb16_400x300.png")
    subprocess.run(["vips", "jpegsave", os.path.join(IMG, "im_cmyk_640x480.jpg"),
                    os.path.join(IMG, "vips_q70_640x480.jpg"), "--Q", "70", "--strip"], check=True)

    # Hostile headers: huge declared sizes, tiny files.
    bomb = bytearray(open(os.path.join(IMG, "dims_200x300.png"), "rb").read())
    bomb[16:24] = struct.pack(">II", 100000, 100000)
    import zlib
    bomb[29:33] = struct.pack(">I", zlib.crc32(bytes(bomb[12:29])) & 0xFFFFFFFF)
    open(os.path.join(IMG, "bomb_100000x100000.png"), "wb").write(bytes(bomb))


def top_down_bmp(im, path):
    """A 24-bit BMP with a negative height (rows stored top to bottom)."""
    w, h = im.size
    stride = (w * 3 + 3) & ~3
    rows = []
    px = im.tobytes()
    for y in range(h):
        row = bytearray()
        for x in range(w):
            r, g, b = px[(y * w + x) * 3:(y * w + x) * 3 + 3]
            row += bytes((b, g, r))
        rows.append(bytes(row) + b"\0" * (stride - w * 3))
    data = b"".join(rows)
    header = struct.pack("<2sIHHI", b"BM", 14 + 40 + len(data), 0, 0, 54)
    dib = struct.pack("<IiiHHIIiiII", 40, w, -h, 1, 24, 0, len(data), 2835, 2835, 0, 0)
    open(path, "wb").write(header + dib + data)


FF = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1"]


def ffmpeg(args, out):
    subprocess.run(FF + args + BITEXACT + [os.path.join(VID, out)], check=True)


def src(w, h, secs, fps=25):
    return ["-f", "lavfi", "-i", f"testsrc=size={w}x{h}:rate={fps}:duration={secs}"]


def tone(secs):
    return ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={secs}"]


X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "38", "-pix_fmt", "yuv420p", "-x264-params", "threads=1"]


def patch_tkhd_matrix(path, matrix):
    """Overwrites the first video track's tkhd matrix (ffmpeg 5.1 cannot set rotation when encoding)."""
    b = bytearray(open(path, "rb").read())
    i = b.index(b"tkhd")
    version = b[i + 4]
    matrix_off = i + 4 + 4 + (32 if version == 1 else 20) + 16
    b[matrix_off:matrix_off + 36] = struct.pack(">9i", *matrix)
    open(path, "wb").write(bytes(b))


def videos():
    os.makedirs(VID, exist_ok=True)
    ffmpeg(src(640, 360, 3) + tone(3) + X264 + ["-c:a", "aac", "-b:a", "32k", "-shortest", "-movflags", "+faststart"], "ok_640x360_3s.mp4")
    ffmpeg(src(640, 360, 3) + X264, "ok_moov_end_640x360_3s.mp4")
    ffmpeg(src(640, 360, 3) + X264 + ["-f", "mov"], "ok_640x360_3s.mov")
    ffmpeg(src(640, 360, 3) + ["-c:v", "mpeg4", "-q:v", "10", "-vtag", "XVID"], "ok_640x360_3s.avi")
    ffmpeg(src(640, 360, 3, "30000/1001") + X264 + ["-f", "mov"], "ntsc_29.97fps_640x360.mov")

    # Rotation by tkhd matrix: the stored frame is 1280x720 in all of them.
    one = 0x10000
    for name, m in [("rot90", [0, one, 0, -one, 0, 0, 0, 0, 0x40000000]),
                    ("rot180", [-one, 0, 0, 0, -one, 0, 0, 0, 0x40000000]),
                    ("rot270", [0, -one, 0, one, 0, 0, 0, 0, 0x40000000])]:
        out = f"{name}_1280x720.mp4"
        ffmpeg(src(1280, 720, 2.5) + X264, out)
        patch_tkhd_matrix(os.path.join(VID, out), m)

    # Sample aspect ratio (pasp): 1440x1080 at 4:3 displays 1920x1080; 1200x300 at 1:2 displays
    # 600x300 (2:1) but is stored 4:1; 1600x900 at 4:3 displays 2133x900 (too wide).
    ffmpeg(src(1440, 1080, 2.5) + X264 + ["-vf", "setsar=4/3"], "sar4_3_1440x1080.mp4")
    ffmpeg(src(1200, 300, 2.5) + X264 + ["-vf", "setsar=1/2"], "sar1_2_1200x300.mp4")
    ffmpeg(src(1600, 900, 2.5) + X264 + ["-vf", "setsar=4/3"], "sar4_3_1600x900.mp4")

    # SAR only in the H.264 VUI (no pasp, track header at the coded size): what FFmpeg then reads.
    raw = os.path.join(VID, "sar_vui.h264")
    subprocess.run(FF + src(720, 480, 2.5) + X264 + ["-vf", "setsar=40/33", raw], check=True)
    ffmpeg(["-r", "25", "-i", raw, "-c", "copy"], "sar_vui_only_720x480.mp4")
    os.remove(raw)
    p = os.path.join(VID, "sar_vui_only_720x480.mp4")
    b = bytearray(open(p, "rb").read())
    i = b.index(b"pasp")
    b[i:i + 4] = b"free"
    t = b.index(b"tkhd")
    wh = t + 4 + 4 + (32 if b[t + 4] == 1 else 20) + 16 + 36
    b[wh:wh + 8] = struct.pack(">II", 720 << 16, 480 << 16)
    open(p, "wb").write(bytes(b))

    # Duration boundaries (25 fps: 1.9 s = 47.5 -> use 10 fps for exact tenths).
    for secs in ["1.9", "2.0", "30.0", "30.5"]:
        frames = int(round(float(secs) * 10))
        ffmpeg(["-f", "lavfi", "-i", f"testsrc=size=320x240:rate=10"] + ["-frames:v", str(frames)] + X264, f"dur_{secs}s_10fps.mp4")

    # Dimension and aspect boundaries.
    for w, h in [(198, 300), (200, 300), (2048, 684), (2050, 684), (600, 200), (602, 200), (200, 602)]:
        ffmpeg(src(w, h, 2.2) + X264, f"dims_{w}x{h}.mp4")

    # Codecs the service may not decode.
    ffmpeg(src(640, 360, 2.5) + ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "40", "-tag:v", "hvc1", "-x265-params", "log-level=none:pools=1:frame-threads=1"], "hevc_hvc1_640x360.mp4")
    ffmpeg(src(640, 360, 2.5) + ["-c:v", "mpeg4", "-q:v", "12"], "mp4v_640x360.mp4")
    ffmpeg(src(320, 240, 2.5) + ["-c:v", "prores_ks", "-profile:v", "0", "-f", "mov"], "prores_320x240.mov")

    # QuickTime without ftyp: the same-size 'free' box keeps every offset valid.
    ffmpeg(src(640, 360, 2.5) + X264 + ["-f", "mov"], "no_ftyp_640x360.mov")
    p = os.path.join(VID, "no_ftyp_640x360.mov")
    b = bytearray(open(p, "rb").read())
    assert b[4:8] == b"ftyp"
    b[4:8] = b"free"
    open(p, "wb").write(bytes(b))

    ffmpeg(tone(3) + ["-c:a", "aac", "-b:a", "32k"], "audio_only.mp4")

    # Fragmented MP4 (empty moov, one fragment per second): duration comes from the fragments.
    ffmpeg(src(640, 360, 3) + X264 + ["-g", "25", "-movflags", "frag_keyframe+empty_moov+default_base_moof"], "frag_640x360_3s.mp4")

    # Other muxer settings and codecs: a timecode track, brands, hev1, MJPEG in AVI, AV1.
    ffmpeg(src(320, 240, 2.5) + X264 + ["-timecode", "01:00:00:00", "-f", "mov"], "timecode_320x240.mov")
    ffmpeg(src(320, 240, 2.5) + X264 + ["-brand", "mp42"], "brand_mp42_320x240.mp4")
    ffmpeg(src(320, 240, 2.5) + X264 + ["-f", "ipod"], "ipod_320x240.m4v")
    ffmpeg(src(320, 240, 2.5) + ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "40", "-tag:v", "hev1",
                                 "-x265-params", "log-level=none:pools=1:frame-threads=1"], "hevc_hev1_320x240.mp4")
    ffmpeg(src(320, 240, 2.5) + ["-c:v", "mjpeg", "-q:v", "20"], "mjpeg_320x240.avi")
    ffmpeg(src(320, 240, 2.5) + ["-c:v", "libaom-av1", "-cpu-used", "8", "-crf", "50", "-threads", "1",
                                 "-row-mt", "0", "-tiles", "1x1"], "av1_320x240.mp4")

    # Containers the API does not take.
    ffmpeg(src(640, 360, 2.5) + X264, "h264_640x360.mkv")
    ffmpeg(src(320, 240, 2.5) + ["-c:v", "libvpx-vp9", "-b:v", "100k", "-deadline", "realtime", "-cpu-used", "8", "-threads", "1"], "vp9_320x240.webm")
    ffmpeg(src(320, 240, 2.5) + X264 + ["-f", "flv"], "h264_320x240.flv")
    ffmpeg(src(320, 240, 2.5) + X264 + ["-f", "mpegts"], "h264_320x240.ts")
    ffmpeg(src(320, 240, 2.5) + X264 + ["-f", "3gp"], "h264_320x240.3gp")

    # Extension lies.
    ffmpeg(src(640, 360, 2.5) + X264 + ["-f", "mov"], "mov_content_named.mp4")

    # Damage: moov at the end and the tail cut (no index); faststart with mdat cut (samples
    # point past the end); AVI cut short.
    truncate(os.path.join(VID, "ok_moov_end_640x360_3s.mp4"), os.path.join(VID, "truncated_moov_end.mp4"), 0.6)
    truncate(os.path.join(VID, "ok_640x360_3s.mp4"), os.path.join(VID, "truncated_faststart.mp4"), 0.6)
    truncate(os.path.join(VID, "ok_640x360_3s.avi"), os.path.join(VID, "truncated.avi"), 0.6)
    # A box whose 64-bit size is 2^64-1, and a zero-size box right after ftyp.
    ftyp = b"\x00\x00\x00\x14ftypisom\x00\x00\x02\x00isom"
    open(os.path.join(VID, "box_size_max.mp4"), "wb").write(ftyp + b"\x00\x00\x00\x01moov" + b"\xff" * 8 + b"\x00" * 64)
    open(os.path.join(VID, "zero_size_box.mp4"), "wb").write(ftyp + b"\x00\x00\x00\x00free" + b"\x00" * 32)


def other():
    os.makedirs(OTHER, exist_ok=True)
    open(os.path.join(OTHER, "text.txt"), "w").write("not media\n")
    open(os.path.join(OTHER, "empty.bin"), "wb").write(b"")
    # HEIC/AVIF signatures only: recognised and named, not accepted.
    open(os.path.join(OTHER, "heic_header.heic"), "wb").write(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 32)
    open(os.path.join(OTHER, "avif_header.avif"), "wb").write(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 32)


def noise(w, h, seed, spread):
    """Deterministic grey noise around mid-grey, as RGB (Pillow's effect_noise is unseeded)."""
    import random
    rng = random.Random(seed)
    grey = bytes(max(0, min(255, int(rng.gauss(128, spread)))) for _ in range(w * h))
    return Image.frombytes("L", (w, h), grey).convert("RGB")


def fidelity():
    """Issue 10: real-world structures that were misjudged, and inputs whose fixes must stay faithful."""
    import io
    # JPEG header oddities libjpeg reads: 0xFF fill bytes before a marker, and a stray stuffed
    # zero (FF 00) between segments.
    base = io.BytesIO()
    noise(300, 225, 1, 60).save(base, "JPEG", quality=90)
    d = base.getvalue()
    second = 4 + int.from_bytes(d[4:6], "big")
    open(os.path.join(IMG, "jpeg_fill_bytes_300x225.jpg"), "wb").write(d[:second] + b"\xff\xff\xff" + d[second:])
    open(os.path.join(IMG, "jpeg_ff00_between_segments_300x225.jpg"), "wb").write(d[:second] + b"\xff\x00" + d[second:])
    # A stuffed 0xFF 0x00 in the entropy-coded data straddling the end of the first 64 KiB
    # (the 0xFF is byte 65535), placed there by a COM segment.
    big = io.BytesIO()
    noise(520, 400, 2, 90).save(big, "JPEG", quality=95)
    d = big.getvalue()
    sos = d.index(b"\xff\xda")
    stuffed = d.index(b"\xff\x00", sos + 2)
    pad = 65535 - stuffed
    assert pad >= 4, pad
    com = b"\xff\xfe" + (pad - 2).to_bytes(2, "big") + b"\x00" * (pad - 4)
    d = d[:sos] + com + d[sos:]
    assert d[65535:65537] == b"\xff\x00"
    open(os.path.join(IMG, "jpeg_stuffed_ff_at_64k_520x400.jpg"), "wb").write(d)

    # A cut-out character: opaque in the middle, transparent around it, with loud colours
    # (an old layer) hidden under the transparent pixels.
    w, h = 300, 450
    cut = Image.new("RGBA", (w, h))
    hidden = Image.new("RGB", (w, h), (255, 0, 255))
    dh = ImageDraw.Draw(hidden)
    for i in range(0, w + h, 12):
        dh.line([(i, 0), (i - h, h)], fill=(0, 255, 0), width=4)
    # The character itself: a solid body, so its colour can be compared after a fix.
    dh.ellipse([70, 60, 230, 400], fill=(30, 160, 60))
    cut.paste(hidden.convert("RGBA"))
    alpha = Image.new("L", (w, h), 0)
    ImageDraw.Draw(alpha).ellipse([70, 60, 230, 400], fill=255)
    cut.putalpha(alpha)
    cut.save(os.path.join(IMG, "cutout_rgba_300x450.png"))

    # Animations: GIF (two frames) and APNG.
    frames = [pattern(400, 300).convert("P", palette=Image.ADAPTIVE, colors=32),
              pattern(400, 300).rotate(180).convert("P", palette=Image.ADAPTIVE, colors=32)]
    frames[0].save(os.path.join(IMG, "animated_400x300.gif"), save_all=True, append_images=frames[1:], duration=100, loop=0)
    rgb = [pattern(400, 300), pattern(400, 300).rotate(180)]
    rgb[0].save(os.path.join(IMG, "apng_400x300.png"), save_all=True, append_images=rgb[1:], duration=100, loop=0)

    # Crops that must keep the character: a banner with the person at the left, a full-body
    # figure with the head at the top.
    banner = Image.new("RGB", (5000, 1000), (70, 110, 160))
    d = ImageDraw.Draw(banner)
    d.ellipse([300, 100, 500, 300], fill=(224, 172, 140))
    d.rectangle([320, 300, 480, 900], fill=(200, 40, 40))
    banner.save(os.path.join(IMG, "banner_person_left_5000x1000.png"))
    fig = Image.new("RGB", (900, 3600), (235, 235, 235))
    d = ImageDraw.Draw(fig)
    d.ellipse([350, 100, 550, 330], fill=(224, 172, 140))
    d.rectangle([330, 330, 570, 2400], fill=(40, 60, 200))
    d.rectangle([350, 2400, 550, 3450], fill=(60, 60, 60))
    d.rectangle([330, 3450, 570, 3550], fill=(20, 20, 20))
    fig.save(os.path.join(IMG, "figure_head_top_900x3600.png"))

    # Fragmented without an empty moov (ffmpeg -movflags frag_keyframe): the first second's
    # samples are in the moov, the rest in fragments; it lasts 4 s.
    ffmpeg(src(320, 240, 4) + X264 + ["-g", "25", "-movflags", "frag_keyframe"], "frag_keyframe_320x240_4s.mp4")
    # CENC-encrypted H.264 + AAC (encv/enca sample entries with sinf/frma/schm).
    ffmpeg(src(320, 240, 2.5) + tone(2.5) + X264 + ["-c:a", "aac", "-b:a", "32k", "-shortest",
           "-encryption_scheme", "cenc-aes-ctr", "-encryption_key", "76a6c65c5ea762046bd749a2e632ccbb",
           "-encryption_kid", "a7e61c373e219033c21091fa607bf3b8"], "cenc_320x240.mp4")
    # A lone DASH media segment (styp, sidx, moof, mdat; no moov).
    tmp = os.path.join(VID, "dash_tmp")
    os.makedirs(tmp, exist_ok=True)
    subprocess.run(FF + src(320, 240, 4) + X264 + ["-g", "25", "-f", "dash", "-seg_duration", "2",
                   "-use_template", "1", "-use_timeline", "0", os.path.join(tmp, "out.mpd")], check=True)
    os.replace(os.path.join(tmp, "chunk-stream0-00001.m4s"), os.path.join(VID, "dash_segment_320x240.m4s"))
    for f in os.listdir(tmp):
        os.remove(os.path.join(tmp, f))
    os.rmdir(tmp)
    # Two video tracks, the second emptied (zero samples): the first is what plays.
    ffmpeg(src(320, 240, 2.5) + ["-map", "0:v", "-map", "0:v"] + X264, "empty_second_track_320x240.mp4")
    p = os.path.join(VID, "empty_second_track_320x240.mp4")
    b = bytearray(open(p, "rb").read())
    second_trak = b.index(b"trak", b.index(b"trak") + 4)
    for box in (b"stts", b"stsc", b"stsz", b"stco"):
        i = b.index(box, second_trak)
        count_at = i + 4 + 4 + (4 if box == b"stsz" else 0)
        b[count_at:count_at + 4] = b"\0\0\0\0"
    open(p, "wb").write(bytes(b))
    # An audio file with one cover picture as its only video (a one-sample MJPEG track).
    cover = os.path.join(VID, "cover.png")
    pattern(320, 240).save(cover)
    ffmpeg(tone(3) + ["-i", cover, "-map", "0:a", "-map", "1:v", "-c:a", "aac", "-b:a", "32k", "-c:v", "mjpeg",
                      "-frames:v", "1"], "audio_with_cover_art.mp4")
    os.remove(cover)
    # Motion JPEG 2000 signature and brand around an ISO-BMFF movie (not an accepted container).
    p = os.path.join(VID, "h264_320x240.3gp")
    b = open(p, "rb").read()
    size = int.from_bytes(b[0:4], "big")
    ftyp = (20).to_bytes(4, "big") + b"ftypmjp2" + b"\0\0\0\0" + b"mjp2"
    signature = b"\0\0\0\x0cjP  \r\n\x87\n"
    # Same total size as the original ftyp plus the signature: chunk offsets move by a constant,
    # so shift them.
    body = bytearray(b[size:])
    shift = len(signature) + len(ftyp) - size
    i = body.index(b"stco")
    n = int.from_bytes(body[i + 8:i + 12], "big")
    for k in range(n):
        at = i + 12 + 4 * k
        body[at:at + 4] = (int.from_bytes(body[at:at + 4], "big") + shift).to_bytes(4, "big")
    entry = body.index(b"avc1")
    body[entry:entry + 4] = b"mjp2"
    open(os.path.join(VID, "mj2_320x240.mj2"), "wb").write(signature + ftyp + bytes(body))


SKIMAGE = "scikit-image==0.26.0"


def people():
    """Public-domain photographs from scikit-image's wheel (PyPI): NASA's astronaut portrait
    (Eileen Collins) for the face detector and the framing tests, and the cat Chelsea for a
    character without a human face. The wheel is fetched with pip (or named by SKIMAGE_WHEEL)."""
    import glob
    import tempfile
    import zipfile
    wheel = os.environ.get("SKIMAGE_WHEEL")
    tmp = tempfile.mkdtemp()
    if not wheel:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                        "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", SKIMAGE, "-d", tmp],
                       check=True)
        wheel = glob.glob(os.path.join(tmp, "scikit_image-*.whl"))[0]
    out = os.path.join(ROOT, "people")
    os.makedirs(out, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for name, size, quality in [("astronaut", (512, 512), 90), ("chelsea", (451, 300), 85)]:
            z.extract(f"skimage/data/{name}.png", tmp)
            im = Image.open(os.path.join(tmp, "skimage", "data", f"{name}.png")).convert("RGB")
            im = im.resize(size, Image.LANCZOS) if im.size != size else im
            im.save(os.path.join(out, f"{name}.jpg"), quality=quality, optimize=True)


def framing_picture():
    """docs/framing-before-after.jpg for docs/quality.md: a character image framed far tighter than
    its reference video, the video's frame, and the image after `wanprep fix --match-framing`.
    Needs a release build (cargo build --release) and fixtures/people (the `people` step)."""
    import tempfile
    tmp = tempfile.mkdtemp()
    photo = os.path.join(ROOT, "people", "astronaut.jpg")
    image, video, fixed = (os.path.join(tmp, n) for n in ("image.jpg", "video.mp4", "fixed.jpg"))
    ff = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    subprocess.run(ff + ["-f", "lavfi", "-i", "gradients=s=800x1000:seed=2", "-i", photo, "-filter_complex",
                         "[1]scale=700:700[p];[0][p]overlay=50:200", "-frames:v", "1", image], check=True)
    subprocess.run(ff + ["-f", "lavfi", "-i", "gradients=s=720x1280:d=2:r=25:speed=0.02:seed=1", "-i", photo,
                         "-filter_complex", "[1]scale=300:300[p];[0][p]overlay=x='200+20*sin(3*t)':y=500,format=yuv420p",
                         "-c:v", "libx264", "-preset", "ultrafast", video], check=True)
    wanprep = os.path.join(ROOT, "..", "target", "release", "wanprep")
    subprocess.run([wanprep, "fix", image, "--match-framing", video, "-o", fixed], check=True)
    frame = os.path.join(tmp, "frame.png")
    subprocess.run(ff + ["-ss", "1", "-i", video, "-frames:v", "1", frame], check=True)
    height = 360
    tiles = []
    for path, label in [(image, "image (before)"), (frame, "video frame"), (fixed, "image after --match-framing")]:
        im = Image.open(path).convert("RGB")
        im = im.resize((round(im.width * height / im.height), height), Image.LANCZOS)
        canvas = Image.new("RGB", (im.width, height + 24), "white")
        canvas.paste(im, (0, 24))
        ImageDraw.Draw(canvas).text((6, 6), label, fill="black")
        tiles.append(canvas)
    gap = 12
    out = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1), height + 24), "white")
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width + gap
    docs = os.path.join(ROOT, "..", "docs")
    os.makedirs(docs, exist_ok=True)
    out.save(os.path.join(docs, "framing-before-after.jpg"), quality=85, optimize=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["framing-picture"]:
        framing_picture()
        sys.exit(0)
    # `fidelity` (or `people`) alone adds those fixtures without re-encoding the others.
    if sys.argv[1:] == ["people"]:
        people()
    elif sys.argv[1:] != ["fidelity"]:
        images()
        videos()
        other()
        people()
    if sys.argv[1:] != ["people"]:
        fidelity()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(ROOT) for f in fs)
    print(f"fixtures: {total / 1e6:.2f} MB", file=sys.stderr)
