"""The query path's speed targets (issue 20), written once: the report's target table
(`eval.bench.report`) and the baseline phase's floor comparison (`eval.bench.baseline_report`)
both read them. Each is a ratio to the model alone measured in the same run, or a latency."""

C1_P50_TO_SINGLE = 1.3  # c=1 p50 over HTTP <= this x one question encoded alone
C32_TO_BATCHED = 0.9  # c=32 queries/s >= this x the model's best batched question rate
C32_P99_MS = 250.0  # c=32 p99 <= this
BUILD_TO_PASSAGES = 0.8  # build chunks/s >= this x bare passage encoding
