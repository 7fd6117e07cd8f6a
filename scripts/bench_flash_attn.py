"""Flash attention on or off, for llama.cpp's own decode of the embedded model at the batch sizes the
strategies use (1: a single member; 3-5: committee members; 10: cot-decode branches).

Both settings run in one process, interleaved round by round; each run evaluates the prompt in every
sequence, then decodes N tokens for all of them, one batched decode per token. Medians of tokens per
second are reported with the ratio on/off; the faster setting is the one `llama_engine.FLASH_ATTN` keeps.
"""

from __future__ import annotations

import statistics
import time

from _bench import Size, parse_args, print_table

from ensemble_cli.numeric import top2_probabilities
from ensemble_cli.calls import Message
from ensemble_cli.providers.llama_engine import FLASH_ATTN, SequenceBatch
from ensemble_cli.providers.local import engine_for

PROMPT = (Message("user", "Explain in a few sentences why the sky is blue."),)
SIZES = {
    "tokens": Size(48, 4, "greedy steps per run"),
    "rounds": Size(5, 1, "interleaved rounds (medians reported)"),
    "batches": Size([1, 3, 5, 10], [1, 3], "batch sizes (sequences decoded together)"),
}


def decode_rate(engine, batch_size: int, tokens: int, flash: bool) -> float:
    """Tokens per second of ``tokens`` greedy steps for ``batch_size`` sequences together."""
    prompt = engine.prompt_tokens(PROMPT)
    batch = SequenceBatch(engine, batch_size, batch_size * (len(prompt) + tokens + 8), flash_attn=flash)
    try:
        logits = batch.feed({0: prompt})
        for seq in range(1, batch_size):
            batch.copy_sequence(0, seq)
        feed = {seq: [top2_probabilities(logits[0])[0]] for seq in range(batch_size)}
        started = time.perf_counter()
        for _ in range(tokens):
            logits = batch.feed(feed)
            feed = {seq: [top2_probabilities(row)[0]] for seq, row in logits.items()}
        return batch_size * tokens / (time.perf_counter() - started)
    finally:
        batch.close()


def main() -> None:
    args = parse_args(__doc__, SIZES)
    engine = engine_for(None)
    rates: dict[tuple[int, bool], list[float]] = {(b, f): [] for b in args.batches for f in (True, False)}
    engine.run_sync(decode_rate, engine, 1, 4, True)  # warm up
    for _ in range(args.rounds):
        for batch_size in args.batches:
            for flash in (True, False):
                rates[(batch_size, flash)].append(engine.run_sync(decode_rate, engine, batch_size, args.tokens, flash))
    rows = []
    for batch_size in args.batches:
        on, off = statistics.median(rates[(batch_size, True)]), statistics.median(rates[(batch_size, False)])
        rows.append([batch_size, f"{on:.1f}", f"{off:.1f}", f"{on / off:.2f}", "on" if on > off else "off"])
    print_table(f"flash attention, tok/s of llama.cpp decode, {args.tokens} tokens, median of {args.rounds}",
                ["batch", "on", "off", "on/off", "faster"], rows)
    print(f"\nllama_engine.FLASH_ATTN is {FLASH_ATTN}")


if __name__ == "__main__":
    main()
