// Guessing in the browser: the run's model.onnx in ONNX Runtime Web (WASM), fed by preprocess.js.
//
// model/model.json (served by the server, or written beside the page by python -m
// quickdraw_tf.static_page) names the model, its classes and its preprocessing; model/model.onnx is the
// graph training wrote (quickdraw_tf/training/onnx_export.py). The runtime is the onnxruntime-web npm
// package's WASM build, copied into static/ort/ by `make web`: nothing is fetched from anywhere else.
import {modelInput, SIDE} from "./preprocess.js";

const RUNTIME = new URL("./ort/", import.meta.url);

// -> {name, classes, prep, server, guess(strokes, topK)}, or throws when the model or the runtime is
// missing. `server`: the manifest came from a server (which also answers v1/ requests).
export async function loadEngine(modelBase) {
  const manifestResponse = await fetch(new URL("model.json", modelBase));
  if (!manifestResponse.ok) throw new Error(`no browser model (${manifestResponse.status})`);
  const manifest = await manifestResponse.json();
  const ort = await import(new URL("ort.bundle.js", RUNTIME).href);
  // One thread: threads need a cross-origin isolated page, which a plain static host does not give,
  // and these models are too small to gain from them.
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = {wasm: new URL("ort-wasm-simd-threaded.wasm", RUNTIME).href};
  const modelResponse = await fetch(new URL("model.onnx", modelBase));
  if (!modelResponse.ok) throw new Error(`model.onnx: ${modelResponse.status}`);
  const session = await ort.InferenceSession.create(new Uint8Array(await modelResponse.arrayBuffer()), {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  const prep = manifest.preprocessing;
  const classes = manifest.classes;

  function feeds(input) {
    if (input.image) return {image: new ort.Tensor("uint8", input.image, [1, SIDE, SIDE])};
    return {
      ink: new ort.Tensor("float32", input.ink, [1, input.length, 3]),
      length: new ort.Tensor("int32", Int32Array.of(input.length), [1]),
    };
  }

  // The page's answer, shaped as the server's /v1/predict answer.
  async function guess(strokes, topK = 3) {
    const start = performance.now();
    const input = modelInput(strokes, prep);
    const prepared = performance.now();
    const outputs = await session.run(feeds(input), ["probabilities"]);
    const probabilities = outputs.probabilities.data;
    const done = performance.now();
    return {
      predictions: topWords(probabilities, classes, topK),
      model: manifest.model,
      timing_ms: {preprocess: prepared - start, inference: done - prepared},
    };
  }

  return {name: manifest.model, classes, prep, server: Boolean(manifest.server), guess};
}

// The k most probable words, best first; ties go to the lower class index (as Predictor.top_k).
export function topWords(probabilities, classes, k) {
  const order = Array.from(probabilities.keys());
  order.sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  return order.slice(0, Math.min(k, classes.length)).map((i) => ({word: classes[i], probability: probabilities[i]}));
}
