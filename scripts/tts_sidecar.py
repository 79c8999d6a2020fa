#!/usr/bin/env python3
"""Reference text-to-speech sidecar for slotline (`speech.tts_engine = "external"`).

Speaks slotline's sidecar protocol (README, "Text-to-speech sidecar") on standard input and output,
with espeak-ng behind it; standard library only.

    request  (stdin,  one line):  {"id": 7, "text": "Your appointment is on Tuesday."}
    answer   (stdout, one line):  {"id": 7, "rate": 22050, "samples": 31752}
             then exactly samples * 2 bytes of 16-bit little-endian mono PCM,
    or       (stdout, one line):  {"id": 7, "error": "what went wrong"}

Each request runs `espeak-ng --stdout` and reads its WAV with the `wave` module. Logs go to standard
error. A neural engine (piper-tts, hibari-tts) fits behind the same loop: replace `speak` with a
function that returns (rate, 16-bit mono PCM bytes) from a voice loaded once at start.

    python3 scripts/tts_sidecar.py [--voice en-us] [--wpm 160] [--espeak espeak-ng]
"""

import argparse
import io
import json
import subprocess
import sys
import wave


def speak(text, args):
    """The text as (rate, 16-bit little-endian mono PCM bytes), spoken by espeak-ng."""
    result = subprocess.run(
        [args.espeak, "--stdout", "--stdin", "-v", args.voice, "-s", str(args.wpm)],
        input=text.encode("utf-8"),
        capture_output=True,
        timeout=args.timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"espeak-ng exited with {result.returncode}: {result.stderr.decode(errors='replace').strip()}")
    # espeak-ng writes to a pipe before it knows the length: the header's frame count is too large and
    # readframes returns what is there.
    with wave.open(io.BytesIO(result.stdout)) as audio:
        if audio.getnchannels() != 1 or audio.getsampwidth() != 2:
            raise RuntimeError("espeak-ng did not write 16-bit mono audio")
        rate = audio.getframerate()
        frames = audio.readframes(audio.getnframes())
    if sys.byteorder != "little":
        raise RuntimeError("this sidecar writes the WAV's little-endian samples as they are")
    return rate, frames[: len(frames) // 2 * 2]


def answer(out, header, pcm=b""):
    out.write(json.dumps(header, separators=(",", ":")).encode("utf-8") + b"\n")
    out.write(pcm)
    out.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice (default en-us)")
    parser.add_argument("--wpm", type=int, default=160, help="words per minute (default 160)")
    parser.add_argument("--espeak", default="espeak-ng", help="the espeak-ng program")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds one sentence may take")
    args = parser.parse_args()
    out = sys.stdout.buffer
    print(f"tts_sidecar: ready (espeak-ng voice {args.voice}, {args.wpm} wpm)", file=sys.stderr, flush=True)
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        request_id = None
        try:
            request = json.loads(line)
            request_id = request["id"]
            rate, pcm = speak(str(request["text"]), args)
        except Exception as error:  # every failure is answered, the loop goes on
            print(f"tts_sidecar: request {request_id}: {error}", file=sys.stderr, flush=True)
            answer(out, {"id": request_id, "error": str(error)})
            continue
        answer(out, {"id": request_id, "rate": rate, "samples": len(pcm) // 2}, pcm)


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)
