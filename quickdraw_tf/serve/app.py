"""The FastAPI app: /v1/predict, /v1/complete, /v1/classes, /healthz, /metrics, the drawing page at /
and, for a single model whose run has a model.onnx, that model for the page to run (/model/model.json,
/model/model.onnx: serve/browser_model.py).

The model is warmed up in the lifespan start-up, which uvicorn completes before it opens the port, so
the first person to draw never waits for TensorFlow's tracing; with freeze_gc, what start-up made is then
frozen out of the garbage collector's walks (quickdraw_tf.inference.gc_freeze). Requests pass guard.py (Host,
Origin, JSON bodies) first; bodies are read and checked by schemas.py; preparation (simplification, ink)
runs in worker threads and model calls in the batcher's one inference thread, so the event loop only
moves bytes. Completions run in their own bounded thread (completion_pool.py), never in the threads
that prepare predictions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect

from quickdraw_tf.data.drawing import Drawing
from quickdraw_tf.inference import gc_freeze
from quickdraw_tf.serve import browser_model, completion_pool, guard, metrics, schemas
from quickdraw_tf.serve.batcher import Batcher, BatcherStopped

STATIC_DIR = browser_model.STATIC_DIR

# A warm-up drawing: a closed square of 4 raw strokes. It only has to exercise the model's code path
# (TensorFlow traces on the first calls); its guess is never shown to anyone.
_SQUARE = [(0, 0, 100, 0), (100, 0, 100, 100), (100, 100, 0, 100), (0, 100, 0, 0)]
_WARMUP_STROKES = tuple(
    [
        [float(x0 + (x1 - x0) * i / 9) for i in range(10)],
        [float(y0 + (y1 - y0) * i / 9) for i in range(10)],
        [float(40 * side + 4 * i) for i in range(10)],
    ]
    for side, (x0, y0, x1, y1) in enumerate(_SQUARE)
)


def warm_up(predictor, max_batch: int) -> None:
    """Calls the model with the batch sizes it will see first, so their tracing happens now."""
    drawing = Drawing(key_id=0, word="", strokes=_WARMUP_STROKES)
    prepared = predictor.prepare(drawing)
    for size in sorted({1, max_batch}):
        predictor.probabilities([prepared] * size)


def create_app(
    predictor,
    max_batch: int = 32,
    max_wait_ms: float = 5.0,
    max_body_bytes: int = schemas.MAX_BODY_BYTES,
    generator=None,
    *,
    body_timeout_s: float = schemas.DEFAULT_BODY_TIMEOUT_S,
    host: str | None = None,
    port: int | None = None,
    allow_origins: tuple[str, ...] = (),
    complete_timeout_s: float = completion_pool.DEFAULT_TIMEOUT_S,
    complete_max_waiting: int = completion_pool.DEFAULT_MAX_WAITING,
    freeze_gc: bool = False,
) -> FastAPI:
    """The app serving `predictor` (a quickdraw_tf.Predictor); max_batch=1 turns batching off;
    `generator` (a serve.completion.Generator, optional) answers /v1/complete. `host` and `port` are
    where the server is bound (the Host check when that is a loopback address; none when not given)."""
    registry = metrics.Metrics()
    batcher = Batcher(_probabilities(predictor), max_batch, max_wait_ms / 1000.0, registry.observe_batch)
    pool = None if generator is None else completion_pool.CompletionPool(
        generator, complete_timeout_s, complete_max_waiting)
    if pool is not None:
        registry.completions.set_function(lambda: pool.taken)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(warm_up, predictor, max_batch)
        if generator is not None:  # trace the sampler's step now, not on the first click
            await asyncio.to_thread(generator.complete, _WARMUP_STROKES, generator.classes[0], 0.5, 0)
        await batcher.start()
        if freeze_gc:
            registry.frozen_objects.set(gc_freeze.freeze_startup_objects())
        app.state.ready = True
        yield
        app.state.ready = False
        await batcher.stop()
        if pool is not None:
            await asyncio.to_thread(pool.shutdown)

    app = FastAPI(title="quickdraw-tf", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ready = False
    app.state.batcher = batcher
    if allow_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(allow_origins), allow_methods=["GET", "POST"],
                           allow_headers=["content-type"])
    app.add_middleware(guard.RequestGuard, hosts=guard.host_names(host, port), allow_origins=allow_origins)
    app.add_middleware(metrics.MetricsMiddleware, metrics=registry)  # outermost: refusals are counted
    _add_error_handlers(app)
    classes = list(predictor.class_names)

    async def read_json(request: Request) -> object:
        length = request.headers.get("content-length")
        return schemas.parse_json(
            await schemas.read_body(request.stream(), length, max_body_bytes, body_timeout_s))

    @app.post("/v1/predict")
    async def predict(request: Request) -> JSONResponse:
        drawing, top_k = schemas.parse_request(await read_json(request), len(classes))
        _check_kind(predictor, drawing)
        start = time.perf_counter()
        try:
            prepared = await asyncio.to_thread(predictor.prepare, drawing)
        except ValueError as error:
            raise schemas.RequestError(422, _one_line(error)) from None
        preprocess_ms = (time.perf_counter() - start) * 1000.0
        try:
            result = await batcher.submit(prepared)
        except BatcherStopped as error:
            raise schemas.RequestError(503, _one_line(error)) from None
        return JSONResponse({
            "predictions": [
                {"word": word, "probability": probability}
                for word, probability in predictor.top_k(result.probabilities, top_k)
            ],
            "model": predictor.name,
            "timing_ms": {"preprocess": round(preprocess_ms, 3), "inference": round(result.inference_ms, 3)},
            "batch_size": result.batch_size,
        })

    @app.post("/v1/complete")
    async def complete(request: Request) -> JSONResponse:
        if pool is None:
            raise schemas.RequestError(404, "no generator loaded: start serve with --generator_dir")
        strokes, word, temperature, seed = schemas.parse_complete_request(await read_json(request))
        if word not in generator.classes:
            raise schemas.RequestError(
                409, f"the generator does not draw {word!r}; it draws: {', '.join(generator.classes)}")
        start = time.perf_counter()
        try:
            answer = await pool.complete(strokes, word, temperature, seed, lambda: _client_gone(request))
        except (completion_pool.Busy, completion_pool.DeadlinePassed) as error:
            raise schemas.RequestError(503, _one_line(error)) from None
        except completion_pool.ClientGone:
            return Response(status_code=499)  # nobody reads it; counted in /metrics
        except ValueError as error:
            raise schemas.RequestError(422, _one_line(error)) from None
        return JSONResponse({"strokes": answer.strokes, "tries": answer.tries, "word": word,
                             "model": generator.name,
                             "timing_ms": round((time.perf_counter() - start) * 1000.0, 3)})

    @app.get("/v1/classes")
    async def get_classes() -> dict:
        accepts = {"strokes": bool(predictor.accepts_strokes), "images": bool(predictor.accepts_images)}
        drawer = None if generator is None else {"classes": generator.classes, "model": generator.name,
                                                 "max_points": generator.max_seq_len}
        return {"classes": classes, "model": predictor.name, "accepts": accepts, "generator": drawer}

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        if not request.app.state.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        if not batcher.alive:
            return JSONResponse({"status": "failed", "error": batcher.failure}, status_code=503)
        return JSONResponse({"status": "ready", "model": predictor.name})

    @app.get("/metrics")
    async def get_metrics() -> Response:
        return Response(registry.render(), media_type=metrics.CONTENT_TYPE)

    onnx_path, manifest = _browser_model(predictor)

    @app.get("/model/model.json")
    async def model_manifest() -> JSONResponse:
        if manifest is None:
            raise schemas.RequestError(
                404, "no browser model: the server runs an ensemble, or the run has no model.onnx "
                     "(python -m quickdraw_tf.export_onnx)")
        return JSONResponse(manifest)

    @app.get("/model/model.onnx")
    async def model_onnx() -> Response:
        if manifest is None:
            raise schemas.RequestError(404, "no browser model")
        if os.path.isfile(onnx_path):
            return FileResponse(onnx_path, media_type="application/octet-stream")
        # a model_dir on a remote file system (gs://)
        return Response(browser_model.read_bytes(onnx_path), media_type="application/octet-stream")

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(str(STATIC_DIR / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    return app


def _browser_model(predictor) -> tuple[str | None, dict | None]:
    """(model.onnx path, model.json content) of a single-model predictor whose run has a model.onnx."""
    dirs = tuple(getattr(predictor, "model_dirs", ()))
    path = browser_model.onnx_file(dirs[0]) if len(dirs) == 1 else None
    if path is None:
        return None, None
    return path, browser_model.manifest(dirs[0], predictor.name, served=True)


async def _client_gone(request: Request) -> None:
    """Returns once the client has hung up (the body is already read: the next message says so)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _probabilities(predictor):
    def call(batch):
        return np.asarray(predictor.probabilities(list(batch)))
    return call


def _check_kind(predictor, drawing: Drawing) -> None:
    if drawing.image is not None and not predictor.accepts_images:
        raise schemas.RequestError(422, f"model {predictor.name} takes strokes ('drawing'), not an 'image'")
    if drawing.image is None and not predictor.accepts_strokes and not predictor.accepts_images:
        raise schemas.RequestError(422, f"model {predictor.name} takes no strokes")


def _one_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is one JSON object {"error": "<one line>"}, whatever raised it."""

    @app.exception_handler(schemas.RequestError)
    async def request_error(_: Request, error: schemas.RequestError) -> JSONResponse:
        # after a body timeout the rest of the body may still come: the connection is not reused
        headers = {"connection": "close"} if error.status == 408 else None
        return JSONResponse({"error": str(error)}, status_code=error.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(_: Request, __: ClientDisconnect) -> Response:
        # The client hung up (e.g. its timeout) while sending: nobody reads an answer; count it as 499
        # (nginx's "client closed request") rather than logging a traceback.
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def server_error(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error: {_one_line(error)}"}, status_code=500)
