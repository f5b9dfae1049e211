"""The benchmark's report as Markdown: the tables `nmt-benchmark` prints (the JSON file
holds every figure; these are the ones to read first)."""

from __future__ import annotations

from typing import Any


def to_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: machine, training, FLOPs and ceiling, decoding, scaling."""
    machine = report["machine"]
    lines = [
        f"## Benchmark: {' '.join(report['overrides']) or '(default config)'}",
        "",
        f"{machine['cpu']} ({', '.join(machine['cpu_features']) or 'no AVX2'}; torch CPU capability "
        f"{machine['torch_cpu_capability']}, bf16 {'native' if machine['bf16_native'] else 'not native'}), "
        f"{machine['logical_cpus']} logical CPUs, {machine['threads']} torch threads, torch "
        f"{machine['torch']}, device {machine['device']}{' ' + machine['gpu'] if machine['gpu'] else ''}; "
        f"{report['parameters']:,} parameters",
    ]
    if "training" in report:
        lines += _training(report) + _flops(report)
    if "decoding" in report:
        lines += _decoding(report)
    if "scaling" in report:
        lines += _scaling(report["scaling"], report["settings"])
    return "\n".join(lines) + "\n"


def _training(report: dict[str, Any]) -> list[str]:
    settings, batching = report["settings"], report["settings"]["batching"]
    cap = f" and {batching['max_sentences']} sentences" if batching["max_sentences"] else ""
    lines = [
        "",
        f"### Training (updates {settings['warmup'] + 1}-{settings['warmup'] + settings['window']} timed, "
        f"median of {settings['repeats']} runs, each in a fresh process)",
        "",
        f"Batches of at most {batching['max_tokens']} padded tokens{cap}.",
        "",
        "| precision | target tokens/s | sentences/s | s/update | peak memory (MB) | target tokens a batch "
        "| padding | target tokens/s of each run |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for precision, summary in report["training"].items():
        run = summary["runs"][0]  # every run trains on the same batches (same seed)
        each = ", ".join(format(r["target_tokens"] / r["seconds"], ".0f") for r in summary["runs"])
        lines.append(
            f"| {precision} | {_training_cells(summary)} | {run['target_tokens'] / run['batches']:.0f} "
            f"| {1 - run['target_tokens'] / run['padded_target_positions']:.0%} | {each} |"
        )
    return lines


def _flops(report: dict[str, Any]) -> list[str]:
    flops = report["flops"]
    lines = [
        "",
        f"### FLOPs (FlopCounterMode over {flops['batches']} window batches, {flops['target_tokens']:,} "
        "target tokens; matrix products only, the recurrences' padded positions included)",
        "",
        "| | MFLOP per target token |",
        "| --- | --- |",
        f"| training (forward + backward) | {flops['training_per_token'] / 1e6:.2f} |",
        f"| forward (teacher forcing) | {flops['forward_per_token'] / 1e6:.2f} |",
        "",
        "### Matrix-multiply ceiling (the fastest kernel, this machine and thread count)",
        "",
        "| product | shape | precision | GFLOP/s | kernel |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {c['what']} | ({c['rows']} x {c['inner']}) @ ({c['inner']} x {c['columns']}) | {c['precision']} "
        f"| {_number(c['gflops'], '.1f')} | {c['kernel']} |"
        for c in report["ceiling"]
    ]
    lines += [
        "",
        "| training precision | achieved GFLOP/s | of the square's ceiling | of the costliest model shape's ceiling |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {precision} | {u['achieved_gflops']:.2f} | {_number(u['of_square_ceiling'], '.1%')} "
        f"| {_number(u['of_costliest_product_ceiling'], '.1%')} |"
        for precision, u in report["utilization"].items()
    ]
    return lines


def _number(value: float | None, spec: str) -> str:
    """`value` formatted, or a dash where it was not measured."""
    return "-" if value is None else format(value, spec)


def _decoding(report: dict[str, Any]) -> list[str]:
    decoding = report["decoding"]
    model = decoding["checkpoint"] or "the first training run's, after its window"
    lines = [
        "",
        f"### Decoding {decoding['test_set']} ({decoding['sentences']} sentences, batches of "
        f"{decoding['max_tokens']} source tokens, {decoding['precision']}, {decoding['device']}; generation "
        f"only, median of {report['settings']['repeats']}; peak memory {decoding['peak_memory_mb']:.0f} MB)",
        "",
        f"Model: {model}." + (f" Note: {decoding['note']}." if decoding["note"] else ""),
        "",
        "| search | seconds | sentences/s | BLEU | chrF | seconds of each run |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {s['name']} | {_decoding_cells(s)} | {s['chrf']:.2f} "
        f"| {', '.join(format(t, '.2f') for t in s['seconds'])} |"
        for s in decoding["searches"]
    ]
    return lines


def _scaling(scaling: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    first, last = settings["scaling_warmup"] + 1, settings["scaling_warmup"] + settings["scaling_window"]
    lines = [
        "",
        f"### Training throughput against batch size (updates {first}-{last} timed, one run each)",
        "",
        "| sentences a batch | target tokens/s | sentences/s | s/update | peak memory (MB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {row['batch_sentences']} | {_training_cells(row)} |" for row in scaling["batch_size"]]
    lines += [
        "",
        "### Decoding against beam size (whole test set)",
        "",
        "| beam | seconds | sentences/s | BLEU |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {row['beam_size']} | {_decoding_cells(row)} |" for row in scaling["beam_size"]]
    lines += [
        "",
        "### Decoding against source length (words; one run each)",
        "",
        "| words | sentences | greedy: seconds | sentences/s | BLEU | beam 5: seconds | sentences/s | BLEU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {row['words']} | {row['sentences']} | {_decoding_cells(row['searches']['greedy'])} "
        f"| {_decoding_cells(row['searches']['beam 5'])} |"
        for row in scaling["source_length"]
    ]
    lines += [
        "",
        "### Epoch time against corpus size (estimated: updates per epoch x measured s/update)",
        "",
        "| share of the pairs | pairs | batches | seconds per epoch |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {row['fraction']:.0%} | {row['pairs']} | {row['batches']} | {row['estimated_seconds_per_epoch']:.0f} |"
        for row in scaling["corpus_size"]
    ]
    return lines


def _training_cells(summary: dict[str, Any]) -> str:
    return (
        f"{summary['target_tokens_per_second']:.0f} | {summary['sentences_per_second']:.1f} "
        f"| {summary['seconds_per_update']:.3f} | {summary['peak_memory_mb']:.0f}"
    )


def _decoding_cells(result: dict[str, Any]) -> str:
    return f"{result['median_seconds']:.2f} | {result['sentences_per_second']:.1f} | {result['bleu']:.2f}"
