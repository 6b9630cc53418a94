// The drawing page: Pointer Events → raw Quick, Draw! strokes [xs, ys, ts] → a guess while drawing.
// Two engines: "browser" (the model in ONNX Runtime Web, engine.js: a guess at every pointer move) when
// model/model.json and the runtime load, else "server" (POST v1/predict, throttled); ?engine=server
// or ?engine=browser asks for one. No framework and no build step: the files are served as they are,
// by the server or by any static file host (python -m quickdraw_tf.static_page).
import {loadEngine} from "./engine.js";

const SEND_INTERVAL_MS = 150;  // at most ~7 requests a second while a stroke is drawn (server engine)
const GAME_SECONDS = 20;
const ASKED_ENGINE = new URLSearchParams(location.search).get("engine");

const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d");
const guessList = document.getElementById("guesses");
const state = {
  strokes: [],        // finished strokes, each [xs, ys, ts]
  current: null,      // the stroke being drawn
  pointerId: null,
  t0: null,           // timeStamp of the drawing's first point: t is ms since it
  seq: 0,             // number of the newest request sent
  shownSeq: 0,        // number of the request whose answer is on screen (older answers are dropped)
  lastSent: -Infinity,
  pending: null,      // timer of a throttled send
  classes: [],
  game: null,         // {target, endsAt, interval, over}
  pointerTypes: new Set(),
  generator: null,    // {classes, model} when the server can finish drawings (/v1/complete)
  finishing: false,   // a completion is being fetched or drawn: the canvas and Undo/Clear wait
  engine: null,       // "browser" or "server", once loaded
  browser: null,      // the browser engine (engine.js loadEngine) when it loaded
  guessing: false,    // a browser guess is running: moves meanwhile ask for one more after it
  again: false,
  guessTimes: [],     // ms from asking to each answer shown (browser: preprocess + inference), for benchmarks/
  moves: 0,           // pointermove events while drawing, for benchmarks/
};

// ---- drawing ------------------------------------------------------------------------------------

function resizeCanvas() {
  const ratio = window.devicePixelRatio || 1;
  const rect = canvas.getBoundingClientRect();
  canvas.width = Math.round(rect.width * ratio);
  canvas.height = Math.round(rect.height * ratio);
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  redraw();
}

function redraw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.lineWidth = 3;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = "#1b1b1f";
  for (const stroke of allStrokes()) drawStroke(stroke, 0);
}

function drawStroke(stroke, from) {
  const [xs, ys] = stroke;
  ctx.beginPath();
  const start = Math.max(0, from - 1);
  ctx.moveTo(xs[start], ys[start]);
  for (let i = start + 1; i < xs.length; i++) ctx.lineTo(xs[i], ys[i]);
  if (xs.length === 1) ctx.lineTo(xs[0] + 0.01, ys[0]);  // a dot
  ctx.stroke();
}

function allStrokes() {
  return state.current ? state.strokes.concat([state.current]) : state.strokes;
}

function addPoint(event) {
  const rect = canvas.getBoundingClientRect();
  if (state.t0 === null) state.t0 = event.timeStamp;
  const [xs, ys, ts] = state.current;
  xs.push(Math.round((event.clientX - rect.left) * 100) / 100);
  ys.push(Math.round((event.clientY - rect.top) * 100) / 100);
  ts.push(Math.max(0, Math.round(event.timeStamp - state.t0)));
}

canvas.addEventListener("pointerdown", (event) => {
  if (state.current || state.finishing || (event.pointerType === "mouse" && event.button !== 0)) return;
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  state.pointerId = event.pointerId;
  state.pointerTypes.add(event.pointerType);
  canvas.dataset.pointerTypes = [...state.pointerTypes].join(",");
  state.current = [[], [], []];
  addPoint(event);
  drawStroke(state.current, 0);
});

canvas.addEventListener("pointermove", (event) => {
  if (!state.current || event.pointerId !== state.pointerId) return;
  event.preventDefault();
  state.moves++;
  const from = state.current[0].length;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const e of events.length ? events : [event]) addPoint(e);
  drawStroke(state.current, from);
  schedulePrediction();
});

function endStroke(event) {
  if (!state.current || event.pointerId !== state.pointerId) return;
  state.strokes.push(state.current);
  state.current = null;
  state.pointerId = null;
  predictNow();
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

// ---- predictions --------------------------------------------------------------------------------

function schedulePrediction() {
  if (state.engine === "browser") { guessInBrowser(); return; }
  const wait = state.lastSent + SEND_INTERVAL_MS - performance.now();
  if (wait <= 0) predictNow();
  else if (state.pending === null) state.pending = setTimeout(predictNow, wait);
}

async function predictNow() {
  clearTimeout(state.pending);
  state.pending = null;
  if (state.engine === "browser") return guessInBrowser();
  const drawing = allStrokes().filter((stroke) => stroke[0].length > 0);
  if (!drawing.length) return;
  const seq = ++state.seq;
  const live = state.current !== null;
  const sentAt = state.lastSent = performance.now();
  let answer;
  try {
    const response = await fetch("v1/predict", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({drawing, top_k: 3}),
    });
    answer = await response.json();
    if (!response.ok) {
      if (seq > state.shownSeq) document.getElementById("timing").textContent = answer.error || "error";
      return;
    }
  } catch (error) {
    document.getElementById("timing").textContent = "the server did not answer";
    return;
  }
  if (seq <= state.shownSeq) return;  // a newer answer is already shown: this one is stale
  state.shownSeq = seq;
  state.guessTimes.push(performance.now() - sentAt);
  showGuesses(answer, seq, live);
}

// One guess at a time; the moves that come meanwhile ask for one more, on the newest strokes.
async function guessInBrowser() {
  if (state.guessing) { state.again = true; return; }
  state.guessing = true;
  try {
    do {
      state.again = false;
      const drawing = allStrokes().filter((stroke) => stroke[0].length > 0);
      if (!drawing.length) break;
      const seq = ++state.seq;
      const live = state.current !== null;
      let answer;
      try {
        answer = await state.browser.guess(drawing, 3);
      } catch (error) {  // a drawing that cannot be used yet (one point): said as the server says it
        if (seq > state.shownSeq) document.getElementById("timing").textContent = error.message;
        continue;
      }
      if (seq <= state.shownSeq) continue;
      state.shownSeq = seq;
      state.guessTimes.push(answer.timing_ms.preprocess + answer.timing_ms.inference);
      showGuesses(answer, seq, live);
    } while (state.again);
  } finally {
    state.guessing = false;
  }
}

function showGuesses(answer, seq, live) {
  guessList.replaceChildren(...answer.predictions.map(({word, probability}) => {
    const item = document.createElement("li");
    item.dataset.word = word;
    item.dataset.probability = String(probability);
    const row = document.createElement("div");
    row.className = "row";
    const name = document.createElement("span");
    name.className = "word";
    name.textContent = word;
    const percent = document.createElement("span");
    percent.textContent = `${(probability * 100).toFixed(1)}%`;
    row.append(name, percent);
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${(probability * 100).toFixed(1)}%`;
    bar.append(fill);
    item.append(row, bar);
    return item;
  }));
  guessList.dataset.shownSeq = String(seq);
  guessList.dataset.updates = String(Number(guessList.dataset.updates) + 1);
  if (live) guessList.dataset.liveUpdates = String(Number(guessList.dataset.liveUpdates) + 1);
  const {preprocess, inference} = answer.timing_ms;
  const where = state.engine === "browser" ? " in this browser" : "";
  document.getElementById("timing").textContent =
    `${answer.model}${where}: preprocess ${preprocess.toFixed(1)} ms, inference ${inference.toFixed(1)} ms`;
  checkGame(answer.predictions[0].word);
}

function forgetGuesses() {
  state.shownSeq = ++state.seq;  // answers still on their way belong to the old drawing
  guessList.replaceChildren();
  guessList.dataset.shownSeq = String(state.shownSeq);
}

// ---- buttons ------------------------------------------------------------------------------------

function undo() {
  if (state.current || state.finishing) return;
  state.strokes.pop();
  redraw();
  if (state.strokes.length) predictNow(); else forgetGuesses();
}

function clearDrawing() {
  if (state.finishing) return;
  state.strokes = [];
  state.current = null;
  state.t0 = null;
  redraw();
  forgetGuesses();
}

function download() {
  if (!state.strokes.length) return;
  const now = new Date();
  const stamp = now.toISOString().replace("T", " ").replace("Z", "000 UTC");
  const top = guessList.querySelector("li");
  const word = state.game ? state.game.target : (top ? top.dataset.word : "");
  const record = {
    word,
    countrycode: "",
    timestamp: stamp,
    recognized: Boolean(top && top.dataset.word === word),
    key_id: `${now.getTime()}${String(Math.floor(Math.random() * 1000)).padStart(3, "0")}`,
    drawing: state.strokes,
  };
  const blob = new Blob([JSON.stringify(record) + "\n"], {type: "application/x-ndjson"});
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `drawing-${record.key_id}.ndjson`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

// ---- finish my drawing: the server's Sketch-RNN continues the strokes ----------------------------

const POINTS_PER_FRAME = 1;  // the continuation appears at ~60 points a second, stroke by stroke

async function finishDrawing() {
  if (state.current || state.finishing || !state.strokes.length || !state.generator) return;
  const top = guessList.querySelector("li");
  const word = state.game ? state.game.target : (top ? top.dataset.word : "");
  const timing = document.getElementById("timing");
  if (!state.generator.classes.includes(word)) {
    timing.textContent = word ? `the generator cannot draw ${word}` : "draw something first";
    return;
  }
  state.finishing = true;
  document.getElementById("finish").disabled = true;
  try {
    const response = await fetch("v1/complete", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({drawing: state.strokes, word, temperature: 0.5}),
    });
    const answer = await response.json();
    if (!response.ok) { timing.textContent = answer.error || "error"; return; }
    if (!answer.strokes.length) {  // every sample the server drew (answer.tries) ended at once
      timing.textContent = `${answer.model} had nothing to add to the ${word} after ${answer.tries} tries: ` +
        "press again, or draw a little more";
      return;
    }
    timing.textContent = `${answer.model} finished a ${word} in ${answer.timing_ms.toFixed(0)} ms`;
    await animate(answer.strokes);
  } catch (error) {
    timing.textContent = "the server did not answer";
  } finally {
    state.finishing = false;
    document.getElementById("finish").disabled = false;
  }
  predictNow();
}

// Appends the new strokes point by point on animation frames, with t at the time each appears, so the
// drawing (and its download) stays in the raw format.
function animate(strokes) {
  return new Promise((resolve) => {
    let s = 0, i = 0;
    function frame() {
      for (let n = 0; n < POINTS_PER_FRAME && s < strokes.length; n++) {
        if (i === 0) state.strokes.push([[], [], []]);
        const stroke = state.strokes[state.strokes.length - 1];
        stroke[0].push(strokes[s][0][i]);
        stroke[1].push(strokes[s][1][i]);
        stroke[2].push(Math.max(0, Math.round(performance.now() - state.t0)));
        drawStroke(stroke, stroke[0].length - 1);
        if (++i >= strokes[s][0].length) { s++; i = 0; }
      }
      if (s < strokes.length) requestAnimationFrame(frame); else resolve();
    }
    requestAnimationFrame(frame);
  });
}

// ---- pictionary ---------------------------------------------------------------------------------

function startGame() {
  if (!state.classes.length) return;
  const asked = new URLSearchParams(location.search).get("target");
  const target = state.classes.includes(asked) ? asked
    : state.classes[Math.floor(Math.random() * state.classes.length)];
  if (state.game) clearInterval(state.game.interval);
  clearDrawing();
  state.game = {target, endsAt: performance.now() + GAME_SECONDS * 1000, interval: null, over: false};
  document.getElementById("target").textContent = target;
  document.getElementById("game").hidden = false;
  document.getElementById("message").textContent = "";
  state.game.interval = setInterval(tick, 100);
  tick();
  canvas.focus();
}

function tick() {
  const game = state.game;
  const left = Math.max(0, game.endsAt - performance.now()) / 1000;
  document.getElementById("timer").textContent = `${left.toFixed(1)} s`;
  if (left <= 0) endGame(`Time's up! I couldn't guess ${game.target}.`);
}

function checkGame(topWord) {
  if (state.game && !state.game.over && topWord === state.game.target) {
    endGame(`Oh I know, it's a ${topWord}!`);
  }
}

function endGame(message) {
  clearInterval(state.game.interval);
  state.game.over = true;
  document.getElementById("message").textContent = message;
}

// ---- start --------------------------------------------------------------------------------------

document.getElementById("undo").addEventListener("click", undo);
document.getElementById("clear").addEventListener("click", clearDrawing);
document.getElementById("download").addEventListener("click", download);
document.getElementById("play").addEventListener("click", startGame);
document.getElementById("finish").addEventListener("click", finishDrawing);
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "z") { event.preventDefault(); undo(); }
});
window.addEventListener("resize", resizeCanvas);
window.quickdraw = state;  // for the browser tests and the curious: the strokes and request counters
resizeCanvas();

async function serverInfo() {
  try {
    const response = await fetch("v1/classes");
    return response.ok ? await response.json() : null;
  } catch (error) {
    return null;
  }
}

async function start() {
  const modelText = document.getElementById("model");
  let manifestSaysServer = true;
  if (ASKED_ENGINE !== "server") {
    try {
      state.browser = await loadEngine(new URL("model/", location.href));
      manifestSaysServer = state.browser.server;
    } catch (error) {
      state.browserError = String(error && error.message ? error.message : error);
    }
  }
  // The server also answers what the page cannot do alone (finish my drawing), when there is one.
  const info = manifestSaysServer ? await serverInfo() : null;
  if (ASKED_ENGINE === "browser" && !state.browser) {
    modelText.textContent = `the model cannot run in this browser: ${state.browserError}`;
    return;
  }
  if (!state.browser && !info) {
    modelText.textContent = "no model: neither model/model.json nor a server answered";
    return;
  }
  state.engine = state.browser ? "browser" : "server";
  state.classes = state.browser ? state.browser.classes : info.classes;
  state.generator = info ? info.generator || null : null;
  document.getElementById("finish").hidden = !state.generator;
  const name = state.browser ? state.browser.name : info.model;
  const where = state.browser ? "guessing in this browser" : "guessing on the server";
  modelText.textContent = `model ${name}: ${state.classes.length} words, ${where}`;
  document.getElementById("privacy").textContent = state.browser
    ? "Your strokes stay in this browser: the model runs here."
    : "Your strokes are sent to this server as x, y and time.";
  document.body.dataset.engine = state.engine;
  document.body.dataset.ready = "true";
}

start();
