#!/usr/bin/env bash
# Intelligibility of the agents' voices on the phone: 32 of the agent's own sentences from the dialog
# corpus, spoken by the default voice (hibari) and by espeak-ng (the fallback), through G.711 μ-law,
# transcribed by the project's whisper; prints each miss and the word error rate of each voice, and fails
# when the default voice's is above 5 % (tests/it/voice_default.rs). Needs scripts/setup.sh --test.
set -euo pipefail
cd "$(dirname "$0")/.."
IT_COMPARE_ESPEAK=1 exec cargo nextest run --locked --no-capture --run-ignored only \
    -E 'test(=voice_default::the_default_voice_is_understood_on_the_phone)'
