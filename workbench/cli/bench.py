"""Benchmark: ``python -m workbench.cli.bench [--config compact|paper]`` prints one JSON object.

Preprocessing ms/image (PNG bytes of synthetic signatures -> 224 x 224), verifier inference
ms/pair at batch 1 and batch 32 (eval, BatchNorm folded into convolutions,
``torch.inference_mode``, channels_last), training
ms/pair (forward, focal loss, backward, Adam step at batch 64), peak resident memory, torch
version and thread count. Timings are medians over repeats after a warm-up.

``--identify N`` times identification through verification over ``N`` enrolled synthetic
writers (3 references each) with the shipped embedding Siamese (an untrained one of the same
shape when none is shipped): embedding the gallery once, then one identification (decode,
eq. 1-5, one embedding, the distances to every reference, the ranking).

``--pages DIR`` measures signature finding on the synthetic pages of ``DIR`` (``python -m
workbench.data pages``): top-candidate hit rate at box IoU 0.8, finding time per page, and the
change of the verifier's score between each signature and its page (``workbench.intake``).

``--load N [--calls M]`` serves the app and runs N concurrent ``gradio_client`` users calling
``/verify`` (``workbench.cli.load``): calls/s, p50 and p95 latency, errors, server memory.

``--app`` instead times what the app does with the shipped weights on the synthetic
``examples/`` files: the verdict for one questioned signature against one and against five
references (decode, eq. 1-5, scoring; nothing cached), against five references taken in
before (a new questioned signature each time: the app keeps references' intake and first
layers), the two warnings of a verdict against five references (the copy check and the
out-of-conditions check, whose backbone features the verdict has cached), the full
explanation (difference-SimAM maps, cross-attention figure, Integrated Gradients attribution,
overlays) and the examiner's report.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import statistics
import sys
import time

import numpy as np
import torch
from PIL import Image

from workbench import engine
from workbench.config import DEFAULT_VERIFIER, EXAMPLES_DIR, INPUT_SIZE, ModelConfig
from workbench.losses import focal_contrast_loss
from workbench.models import build_model
from workbench.models.fusion import fuse_for_inference
from workbench.preprocess import preprocess


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_preprocess(n: int = 20) -> float:
    """Median ms per image over ``n`` synthetic signatures encoded as PNG."""
    from workbench.data.synthetic import make_writer, render_genuine

    rng = np.random.default_rng(0)
    files = []
    for _ in range(n):
        buffer = io.BytesIO()
        Image.fromarray(render_genuine(make_writer(rng), rng)).save(buffer, format="PNG")
        files.append(buffer.getvalue())
    times = []
    for data in files:
        start = time.perf_counter()
        preprocess(data)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bench_model(config: ModelConfig, repeats: int) -> dict[str, float]:
    model = build_model(config=config)
    shape = (config.input_height, config.input_width)

    def batch(n: int) -> torch.Tensor:
        return torch.rand(n, 1, *shape).contiguous(memory_format=torch.channels_last)

    inference_model = fuse_for_inference(model)
    result = {}
    for size in (1, 32):
        x1, x2 = batch(size), batch(size)

        def infer(x1: torch.Tensor = x1, x2: torch.Tensor = x2) -> None:
            with torch.inference_mode():
                inference_model(x1, x2)

        result[f"inference_ms_per_pair_batch{size}"] = 1000 * _median_seconds(infer, repeats) / size

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    one_batch = [((batch(64), batch(64)), torch.randint(0, 2, (64,)))]
    cpu = torch.device("cpu")

    def step() -> None:  # one training step of the engine every training run uses
        engine.train_one_epoch(
            model, focal_contrast_loss, optimizer, one_batch, cpu, progress=False
        )

    result["training_ms_per_pair_batch64"] = 1000 * _median_seconds(step, max(2, repeats // 2)) / 64
    result["parameters"] = sum(p.numel() for p in model.parameters())
    return result


def _png_signatures(count: int, seed: int) -> list[bytes]:
    """PNG bytes of ``count`` synthetic genuine signatures of one generator writer."""
    import cv2

    from workbench.data.synthetic import sample_writer

    genuine, _ = sample_writer(seed, writer=0, genuine=count, forgeries=0)
    return [cv2.imencode(".png", image)[1].tobytes() for image in genuine]


def bench_app(weights: str, repeats: int) -> dict[str, float]:
    """Median ms of the app's actions (see the module docstring) with ``weights``."""

    from workbench.verification.views import examiner_report, explanation_views
    from workbench.verification.workbench import Workbench

    examples = EXAMPLES_DIR
    refs = [examples / f"writer1_genuine_{i}.png" for i in (1, 2, 3)] + [
        examples / f"writer2_genuine_{i}.png" for i in (1, 2)
    ]
    questioned = examples / "writer1_forgery_1.png"
    bench = Workbench(weights)
    # Cold verdicts: nothing kept between calls, every image taken in and computed each time.
    cold = Workbench(weights)
    cold.intake_cache.max_items = cold.feature_cache.max_items = 0
    # An examiner's usual case: the references taken in once, a new questioned file each call
    # (PNG bytes of synthetic signatures never seen by the caches).
    newcomers = iter(_png_signatures(repeats + 1, seed=77))
    verdict = bench.verify(refs, questioned)

    def warnings() -> None:
        bench.copy_flag(verdict)
        bench.conditions_check(verdict)

    def explain() -> None:
        _, figure, _ = explanation_views(bench, str(refs[0]), str(questioned))
        if figure is not None:
            figure.savefig(io.BytesIO(), format="png")  # as Gradio does to send the plot

    def report() -> None:
        examiner_report(bench, [str(refs[0])], str(questioned), bench.threshold)

    return {
        "verdict_ms_1_reference": 1000
        * _median_seconds(lambda: cold.verify(refs[:1], questioned), repeats),
        "verdict_ms_5_references": 1000
        * _median_seconds(lambda: cold.verify(refs, questioned), repeats),
        "verdict_ms_5_cached_references": 1000
        * _median_seconds(lambda: bench.verify(refs, next(newcomers)), repeats),
        "warnings_ms_5_references": 1000 * _median_seconds(warnings, repeats),
        "explanation_ms": 1000 * _median_seconds(explain, repeats),
        "report_ms": 1000 * _median_seconds(report, max(1, repeats // 2)),
    }


def bench_identify(writers: int, repeats: int) -> dict[str, float | str]:
    """Median ms of one identification over ``writers`` enrolled writers (module docstring)."""
    from workbench.data.synthetic import sample_writer
    from workbench.identification.embedding import embedding_scorer, load_embedding
    from workbench.identification.gallery import Gallery
    from workbench.identification.ranking import DEFAULT_EMBEDDINGS
    from workbench.models.embedding import EmbeddingConfig, EmbeddingSiamese

    shipped = [w for w in DEFAULT_EMBEDDINGS if w.exists()]
    if shipped:
        model, _, pre = load_embedding(shipped[0])
        source = str(shipped[0].name)
    else:
        from workbench.config import PreprocessConfig

        model, pre = EmbeddingSiamese(EmbeddingConfig()).eval(), PreprocessConfig()
        source = "untrained (no shipped embedding Siamese)"
    gallery = Gallery()
    for w in range(writers):
        genuine, _ = sample_writer(7, writer=w, genuine=3, forgeries=0)
        gallery.enroll(f"writer {w}", np.stack([preprocess(g, config=pre)[0] for g in genuine]))
    buffer = io.BytesIO()
    Image.fromarray(sample_writer(8, writer=0, genuine=1, forgeries=0)[0][0]).save(buffer, "PNG")
    query = buffer.getvalue()
    scorer = embedding_scorer(model)
    start = time.perf_counter()
    gallery.rank(preprocess(query, config=pre)[0], scorer)  # embeds the whole gallery once
    first = time.perf_counter() - start

    def identify() -> None:
        gallery.rank(preprocess(query, config=pre)[0], scorer)

    return {
        "identify_writers": writers,
        "identify_references": 3 * writers,
        "identify_embedding": source,
        "identify_gallery_embedding_ms": 1000 * first,
        "identify_ms": 1000 * _median_seconds(identify, repeats),
    }


def _bench_pages(args) -> int:
    from pathlib import Path

    from workbench.intake.measure import measure_pages
    from workbench.verification.workbench import Workbench

    weights = args.weights or str(DEFAULT_VERIFIER)
    workbench = Workbench(weights) if Path(weights).is_file() and not args.find_only else None
    try:
        result = measure_pages(args.pages, workbench=workbench)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result.update(
        weights=weights if workbench else None,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        cpu=platform.processor() or platform.machine(),
    )
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.cli.bench", description=__doc__)
    parser.add_argument("--config", choices=["compact", "paper"], default="compact")
    parser.add_argument("--input-size", type=int, default=INPUT_SIZE)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0 = torch's default)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--app", action="store_true", help="time the app's actions with --weights instead"
    )
    parser.add_argument(
        "--weights", default=None, help="for --app (default: weights/verifier.safetensors)"
    )
    parser.add_argument(
        "--identify",
        type=int,
        default=0,
        metavar="N",
        help="time identification over N enrolled writers instead",
    )
    parser.add_argument(
        "--pages",
        metavar="DIR",
        help="measure signature finding (and, with weights, the score change) on the synthetic "
        "pages of DIR (python -m workbench.data pages) instead",
    )
    parser.add_argument("--out", help="with --pages: also write the JSON result here")
    parser.add_argument(
        "--find-only", action="store_true", help="with --pages: time the finding, no scores"
    )
    parser.add_argument(
        "--load",
        type=int,
        default=0,
        metavar="N",
        help="serve the app and run N concurrent gradio_client users calling /verify instead",
    )
    parser.add_argument("--calls", type=int, default=200, help="with --load: calls in all")
    parser.add_argument(
        "--endpoint",
        choices=["verify", "verify_data"],
        default="verify",
        help="with --load: the endpoint called (verify_data: the verdict as data, no images)",
    )
    parser.add_argument(
        "--verdict-only",
        action="store_true",
        help="with --load: the clients take the answer without downloading its images",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=1,
        metavar="P",
        help="with --load: spread the users over P client processes (default 1: every user a "
        "thread of this one)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.pages:
        return _bench_pages(args)
    if args.load:
        from workbench.cli.load import run_load

        try:
            result = run_load(
                args.load,
                args.calls,
                weights=args.weights,
                download=not args.verdict_only,
                endpoint=args.endpoint,
                processes=args.client_processes,
            )
        except (RuntimeError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(
            json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()})
        )
        return 0
    if args.identify:
        result = {
            **bench_identify(args.identify, args.repeats),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
        print(
            json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()})
        )
        return 0
    if args.app:
        timings = bench_app(args.weights or str(DEFAULT_VERIFIER), args.repeats)
        result = {
            "app": True,
            **timings,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
        }
        print(
            json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()})
        )
        return 0
    config = ModelConfig(
        width=args.config, input_height=args.input_size, input_width=args.input_size
    )
    result = {
        "config": args.config,
        "growth_rate": config.growth_rate,
        "stem_channels": config.stem_channels,
        "input_size": [config.input_height, config.input_width],
        "preprocess_ms_per_image": bench_preprocess(),
        **bench_model(config, args.repeats),
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
