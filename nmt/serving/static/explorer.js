// The attention explorer: calls the JSON API (/api/translate, /api/score) and draws the answer.
"use strict";

const $ = (id) => document.getElementById(id);

async function call(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

function showError(error) { $("error").textContent = error ? String(error.message || error) : ""; }

function cell(tag, text, className) {
  const element = document.createElement(tag);
  if (text !== undefined) element.textContent = text;
  if (className) element.className = className;
  return element;
}

// Weight 0 -> white, 1 -> dark blue.
function colour(weight) {
  const mix = (a, b) => Math.round(a + (b - a) * weight);
  return `rgb(${mix(255, 20)}, ${mix(255, 60)}, ${mix(255, 130)})`;
}

function drawHeatmap(shown) {
  const table = cell("table", undefined, "heatmap");
  const head = document.createElement("tr");
  head.appendChild(cell("th"));
  shown.source_pieces.forEach((piece) => head.appendChild(cell("th", piece, "source-piece")));
  head.appendChild(cell("th", "p", "probability"));
  table.appendChild(head);
  shown.attention.forEach((row, t) => {
    const line = document.createElement("tr");
    line.dataset.target = t;
    line.appendChild(cell("th", shown.target_pieces[t], "target-piece"));
    row.forEach((weight) => {
      const box = cell("td");
      box.style.background = colour(weight);
      box.title = weight.toFixed(3);
      line.appendChild(box);
    });
    const probability = shown.token_probabilities[t];
    const label = cell("th", undefined, "probability");
    const bar = cell("span", undefined, "bar");
    bar.style.width = `${Math.round(40 * probability)}px`;
    label.append(bar, probability.toFixed(2));
    line.appendChild(label);
    line.addEventListener("mouseenter", () => highlight(table, shown, t));
    line.addEventListener("mouseleave", () => highlight(table, shown, -1));
    table.appendChild(line);
  });
  $("heatmap").replaceChildren(table);
}

// Hovering target piece t: its row, the source pieces it gives weight >= 0.1, its word's links.
function highlight(table, shown, t) {
  table.querySelectorAll("tr").forEach((row) => row.classList.toggle("hovered", Number(row.dataset.target) === t));
  table.querySelectorAll("th.source-piece").forEach((label, s) => {
    label.classList.toggle("attended", t >= 0 && shown.attention[t][s] >= 0.1);
  });
  const word = t >= 0 ? wordOfPiece(shown.target_pieces, t) : -1;
  document.querySelectorAll("#links [data-target-word]").forEach((element) => {
    element.classList.toggle("hovered", Number(element.dataset.targetWord) === word);
  });
}

function wordOfPiece(pieces, position) {
  let word = 0;
  for (let i = 1; i <= position; i++) if (pieces[i].startsWith("\u2581")) word++;
  return pieces[position] === "</s>" ? -1 : word;
}

function drawLinks(shown) {
  const svg = $("links");
  const width = svg.clientWidth || 900;
  const spot = (words, i) => ((i + 0.5) * width) / Math.max(words.length, 1);
  const parts = [];
  shown.alignment.forEach(([s, t]) => {
    parts.push(`<line data-target-word="${t}" x1="${spot(shown.source_words, s)}" y1="28" x2="${spot(shown.target_words, t)}" y2="110"/>`);
  });
  const escape = (text) => text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  shown.source_words.forEach((word, i) => parts.push(`<text class="source-word" x="${spot(shown.source_words, i)}" y="18" text-anchor="middle">${escape(word)}</text>`));
  shown.target_words.forEach((word, j) => parts.push(`<text class="target-word" data-target-word="${j}" x="${spot(shown.target_words, j)}" y="128" text-anchor="middle">${escape(word)}</text>`));
  svg.innerHTML = parts.join("");
}

function showDetails(shown) {
  $("details").hidden = !shown.attention;  // a model without attention: the translation alone
  if (!shown.attention) return;
  drawHeatmap(shown);
  drawLinks(shown);
}

async function translate() {
  showError();
  const list = $("translations");
  list.replaceChildren(cell("li", "translating…"));
  try {
    const answer = await call("/api/translate", { text: $("source").value, nbest: Number($("nbest").value) });
    const hypotheses = answer.translations[0].nbest;
    list.replaceChildren();
    hypotheses.forEach((hypothesis, rank) => {
      const item = cell("li", undefined, "hypothesis");
      item.append(cell("span", hypothesis.text, "text"), cell("span", `log P ${hypothesis.log_prob.toFixed(2)}`, "score"));
      item.addEventListener("click", () => {
        list.querySelectorAll("li").forEach((other) => other.classList.remove("selected"));
        item.classList.add("selected");
        showDetails(hypothesis);
      });
      list.appendChild(item);
      if (rank === 0) item.click();
    });
  } catch (error) {
    list.replaceChildren();
    showError(error);
  }
}

async function score() {
  showError();
  try {
    const answer = await call("/api/score", { source: $("score-source").value, target: $("score-target").value });
    $("score-result").textContent = `log P = ${answer.log_prob.toFixed(3)}, perplexity ${answer.perplexity.toFixed(2)}`;
    showDetails(answer);
  } catch (error) {
    showError(error);
  }
}

function switchTab(button) {
  document.querySelectorAll(".tab").forEach((tab) => tab.classList.toggle("active", tab === button));
  document.querySelectorAll(".panel").forEach((panel) => panel.classList.toggle("active", panel.id === button.dataset.tab));
}

async function start() {
  document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => switchTab(tab)));
  $("translate").addEventListener("click", translate);
  $("score").addEventListener("click", score);
  $("source").addEventListener("keydown", (event) => { if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); translate(); } });
  try {
    const info = await call("/api/info");
    const languages = info.source_language ? `${info.source_language} → ${info.target_language}, ` : "";
    $("model-info").textContent = `${info.name}: ${languages}${info.parameters.toLocaleString("en")} parameters, ${info.search}`;
    $("nbest").replaceChildren(...Array.from({ length: info.beam_size }, (_, i) => cell("option", String(i + 1))));
  } catch (error) {
    showError(error);
  }
}

start();
