#!/usr/bin/env python3
"""Reads a craftgrad run's TensorBoard event file with TensorBoard's own reader
(tensorboard.backend.event_processing.event_accumulator) and compares it with the run's
metrics.jsonl: one scalar tag per numeric metric (every key but 'step'), a value at every
step that has a row, each equal to the metric rounded to float32 (TensorBoard's
simple_value). Exits 1 on any difference.

    python3 scripts/device/check_tensorboard.py RUN_DIR
"""
import glob
import json
import math
import os
import struct
import sys



def as_float32(x):
    """x rounded to the nearest float32, as TensorBoard stores it."""
    if math.isnan(x) or math.isinf(x):
        return x
    try:
        return struct.unpack('<f', struct.pack('<f', x))[0]
    except OverflowError:  # beyond float32's range (struct refuses what would round to inf)
        return math.copysign(math.inf, x)


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def main():
    if len(sys.argv) != 2:
        print('usage: check_tensorboard.py RUN_DIR', file=sys.stderr)
        return 2
    run_dir = sys.argv[1]
    from tensorboard.backend.event_processing import event_accumulator

    events = glob.glob(os.path.join(run_dir, 'events.out.tfevents.*'))
    if len(events) != 1:
        print(f'check_tensorboard: expected one event file in {run_dir}, found {events}', file=sys.stderr)
        return 1
    # size_guidance 0: keep every scalar (the default samples 10,000 per tag).
    acc = event_accumulator.EventAccumulator(events[0], size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    tb = {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()['scalars']}

    want = {}
    with open(os.path.join(run_dir, 'metrics.jsonl'), encoding='utf-8') as f:
        for line in f:
            row = json.loads(line)
            for key, value in row.items():
                if key != 'step' and isinstance(value, (int, float)) and not isinstance(value, bool):
                    want.setdefault(key, {})[row['step']] = float(value)

    problems = []
    if sorted(tb) != sorted(want):
        problems.append(f'tags {sorted(tb)} vs metrics.jsonl keys {sorted(want)}')
    values = 0
    for tag in sorted(set(tb) & set(want)):
        if sorted(tb[tag]) != sorted(want[tag]):
            problems.append(f'{tag}: steps {sorted(tb[tag])} vs metrics.jsonl {sorted(want[tag])}')
        for step in sorted(set(tb[tag]) & set(want[tag])):
            if not same(tb[tag][step], as_float32(want[tag][step])):
                problems.append(f'{tag} at step {step}: TensorBoard {tb[tag][step]!r}, metrics.jsonl {want[tag][step]!r}')
            values += 1
    for p in problems[:50]:
        print(f'check_tensorboard: {p}', file=sys.stderr)
    print(json.dumps({'check': 'tensorboard', 'reader': 'tensorboard event_accumulator', 'tags': len(tb),
                      'values': values, 'ok': not problems, 'problems': len(problems)}))
    return 0 if not problems and values > 0 else 1


if __name__ == '__main__':
    sys.exit(main())
