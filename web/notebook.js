// trickbook's notebook page: renders a notebook's cells and their outputs. The same code draws a
// saved HTML report (static: the data is in the page) and the live page (a WebSocket to the
// trickbook process that runs the cells). No libraries, no network beyond that one socket.
"use strict";

const KEYWORDS = new Set(["let", "var", "fn", "if", "else", "while", "for", "in", "break", "continue", "return",
  "and", "or", "not", "true", "false", "nil", "import", "assert", "try", "catch", "throw"]);
const MAX_TEXT_LINES = 2000;   // lines of printed text shown per cell before "show all"
const MAX_TEXT_CHARS = 200000;

const state = { cells: [], meta: {}, live: null, socket: null, lastCell: null };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

// MARK: Highlighting: keywords, strings (with {interpolation}), numbers and comments.

function highlight(source) {
  const out = document.createDocumentFragment();
  const re = /(#[^\n]*)|("(?:[^"\\\n]|\\.)*"?)|(\b\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)/g;
  let last = 0, m;
  while ((m = re.exec(source)) !== null) {
    if (m.index > last) out.append(source.slice(last, m.index));
    const cls = m[1] ? "tok-com" : m[2] ? "tok-str" : m[3] ? "tok-num" : KEYWORDS.has(m[4]) ? "tok-kw" : null;
    out.append(cls ? el("span", { class: cls }, m[0]) : m[0]);
    last = re.lastIndex;
  }
  out.append(source.slice(last) + "\n");
  return out;
}

// MARK: Outputs

// Charts come from trickbook's own SVG writer; they are parsed as SVG and only drawing elements are
// kept, so nothing in one can run.
const SVG_ELEMENTS = new Set(["svg", "rect", "text", "line", "polyline", "path", "g", "title", "circle", "tspan"]);
function safeSVG(text) {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const root = doc.documentElement;
  if (root.nodeName !== "svg") return el("pre", { class: "error" }, "(a chart that could not be read)");
  for (const node of Array.from(root.querySelectorAll("*")).concat([root])) {
    if (!SVG_ELEMENTS.has(node.nodeName)) { node.remove(); continue; }
    for (const a of Array.from(node.attributes)) {
      if (a.name.startsWith("on") || /href/i.test(a.name)) node.removeAttribute(a.name);
    }
  }
  return document.importNode(root, true);
}

// Markdown comes from the notebook, which may not be the reader's own: its HTML keeps only the
// elements and attributes of prose, and links only to http(s) pages or anchors. (The page's content
// security policy runs no inline script either.)
const PROSE_ELEMENTS = new Set(["P", "H1", "H2", "H3", "H4", "H5", "H6", "UL", "OL", "LI", "EM", "STRONG", "B", "I",
  "CODE", "PRE", "BLOCKQUOTE", "HR", "BR", "A", "TABLE", "THEAD", "TBODY", "TR", "TH", "TD", "DEL", "S", "IMG", "SPAN"]);
const DROPPED_ELEMENTS = new Set(["SCRIPT", "STYLE", "IFRAME", "OBJECT", "EMBED", "TEMPLATE", "SVG", "MATH", "FORM",
  "INPUT", "TEXTAREA", "SELECT", "BUTTON", "LINK", "META", "BASE", "NOSCRIPT", "FRAME", "FRAMESET"]);
function safeProse(html) {
  const doc = new DOMParser().parseFromString(html || "", "text/html");
  for (const node of Array.from(doc.body.querySelectorAll("*")).reverse()) {
    if (DROPPED_ELEMENTS.has(node.nodeName)) { node.remove(); continue; }
    if (!PROSE_ELEMENTS.has(node.nodeName)) { node.replaceWith(...node.childNodes); continue; }
    for (const a of Array.from(node.attributes)) {
      const keep = (node.nodeName === "A" && a.name === "href" && /^(https?:|#)/i.test(a.value.trim())) ||
        (node.nodeName === "IMG" && a.name === "src" && /^data:image\/(png|jpeg|gif|webp);/i.test(a.value.trim())) ||
        (node.nodeName === "IMG" && a.name === "alt") || a.name === "title";
      if (!keep) node.removeAttribute(a.name);
    }
    if (node.nodeName === "A") node.setAttribute("rel", "noopener noreferrer");
  }
  return Array.from(doc.body.childNodes).map(n => document.importNode(n, true));
}

function renderTable(o) {
  const t = el("table", {});
  t.append(el("tr", {}, ...o.columns.map(c => el("th", {}, c))));
  for (const row of o.rows) t.append(el("tr", {}, ...row.map(c => el("td", {}, c))));
  return t;
}

function renderProgress(o) {
  const fill = el("div", { class: "fill" });
  fill.style.width = (Math.max(0, Math.min(1, o.fraction)) * 100).toFixed(1) + "%";
  return el("div", { class: "progress", "data-progress": String(o.id) }, el("div", {}, o.text),
    el("div", { class: "track" }, fill));
}

function renderError(cell, o) {
  const pre = el("pre", { class: "error" });
  const text = o.text;
  // The headline names the place as file:line:col; clicking it puts the cursor there.
  // Only the first line is searched: a huge message must not make the pattern backtrack for long.
  const cut = text.indexOf("\n"), first = cut < 0 ? text : text.slice(0, cut), rest = cut < 0 ? "" : text.slice(cut);
  const m = o.line ? /^(.{0,2000}?)(\S{1,2000}:\d+:\d+)(.*)$/.exec(first.slice(0, 5000)) : null;
  if (m && first.length <= 5000) {
    pre.append(m[1], el("span", { class: "loc", title: "go to the line", onclick: () => focusLine(cell, o.line, o.column) }, m[2]), m[3], rest);
  } else pre.append(text);
  return pre;
}

// Appends one output under its cell. Printed text joins the block before it; a progress bar with
// the same id is drawn again in place.
function appendOutput(cell, o, box) {
  box = box || cell.dom && cell.dom.outputs;
  if (!box) return;
  if (o.kind === "text") {
    let pre = box.lastElementChild;
    if (pre && pre.classList.contains("more")) pre = pre.previousElementSibling;
    if (!pre || pre.dataset.kind !== "text") {
      pre = el("pre", { "data-kind": "text" });
      pre.lines = 0; pre.chars = 0; pre.held = [];
      box.append(pre);
    }
    // Beyond MAX_TEXT_LINES lines (or MAX_TEXT_CHARS characters) the rest is held back behind a
    // button, so that a cell printing without end does not freeze the page.
    const lines = o.text.split("\n");
    let k = 0;
    while (k < lines.length && pre.held.length === 0 && pre.lines < MAX_TEXT_LINES && pre.chars < MAX_TEXT_CHARS) {
      pre.append(lines[k] + "\n");
      pre.lines += 1; pre.chars += lines[k].length + 1; k += 1;
    }
    if (k < lines.length) {
      for (; k < lines.length; k++) pre.held.push(lines[k]);
      let more = pre.nextElementSibling;
      if (!more || !more.classList.contains("more")) {
        more = el("button", { class: "more", onclick: () => {
          pre.append(pre.held.join("\n") + "\n"); pre.lines += pre.held.length; pre.held = []; more.remove();
        } });
        pre.after(more);
      }
      more.textContent = `show ${pre.held.length} more lines`;
    }
  } else if (o.kind === "progress") {
    const old = box.querySelector(`[data-progress="${o.id}"]`);
    const fresh = renderProgress(o);
    if (old) old.replaceWith(fresh); else box.append(fresh);
  } else if (o.kind === "error") {
    box.append(renderError(cell, o));
  } else if (o.kind === "svg") {
    box.append(el("div", { "data-kind": "svg" }, safeSVG(o.svg)));
  } else if (o.kind === "png") {
    box.append(el("img", { src: "data:image/png;base64," + o.png, alt: o.alt || "" }));
  } else if (o.kind === "table") {
    box.append(renderTable(o));
  }
}

// MARK: Cells

function statusText(cell) {
  if (cell.status === "running") return "running…";
  if (cell.status === "queued") return "queued";
  if (cell.status === "stale") return "stale: an edit above or here since it ran";
  const t = cell.seconds != null ? ` in ${cell.seconds < 1 ? (cell.seconds * 1000).toFixed(0) + " ms" : cell.seconds.toFixed(1) + " s"}` : "";
  if (cell.status === "ok") return "ran" + t;
  if (cell.status === "error") return "failed" + t;
  if (cell.status === "interrupted") return "interrupted" + t;
  return "";
}

function setStatus(cell, status) {
  cell.status = status;
  if (!cell.dom) return;
  cell.dom.root.className = "cell " + (status || "");
  cell.dom.status.textContent = statusText(cell);
}

function renderEditor(cell) {
  const gutter = el("div", { class: "gutter" });
  const pre = el("pre", {});
  const code = el("div", { class: "code" }, pre);
  const draw = () => {
    pre.replaceChildren(highlight(cell.source));
    const n = cell.source.split("\n").length;
    gutter.textContent = Array.from({ length: n }, (_, i) => i + 1).join("\n");
  };
  draw();
  let area = null;
  if (state.live) {
    area = el("textarea", { spellcheck: "false", "aria-label": `cell ${cell.number} source` });
    area.value = cell.source;
    area.addEventListener("input", () => { cell.source = area.value; draw(); edited(cell); });
    area.addEventListener("keydown", e => {
      if (e.key === "Enter" && e.shiftKey) { e.preventDefault(); run([cell.id]); }
      else if (e.key === "Tab") { e.preventDefault(); area.setRangeText("  ", area.selectionStart, area.selectionEnd, "end"); area.dispatchEvent(new Event("input")); }
    });
    code.append(area);
  }
  return { root: el("div", { class: "editor" }, gutter, code), area };
}

function renderCell(cell) {
  const status = el("span", { class: "status" });
  const tools = el("span", { class: "tools" });
  const head = el("div", { class: "cell-head" }, el("span", { class: "num" }, `[${cell.number}]`),
    el("span", { class: "title" }, cell.title || ""), tools, status);
  const outputs = el("div", { class: "outputs" });
  const root = el("div", { class: "cell", id: "cell-" + cell.id }, head);
  let area = null;
  if (cell.kind === "markdown") {
    const prose = el("div", { class: "prose" }, ...safeProse(cell.html));
    if (state.live) prose.addEventListener("dblclick", () => editMarkdown(cell));
    root.append(prose);
  } else {
    const editor = renderEditor(cell);
    area = editor.area;
    root.append(editor.root, outputs);
  }
  if (state.live) {
    const b = (label, title, f) => tools.append(el("button", { title, onclick: f }, label));
    if (cell.kind === "code") b("▶", "run (Shift-Enter)", () => run([cell.id]));
    if (cell.kind === "code") b("↶", "undo: the models, optimizers and random generators as before this cell last ran", () => { flushEdits(); send({ op: "undo", id: cell.id }); });
    b("↑", "move up", () => { flushEdits(); send({ op: "move", id: cell.id, by: -1 }); });
    b("↓", "move down", () => { flushEdits(); send({ op: "move", id: cell.id, by: 1 }); });
    b("+", "add a code cell below", () => { flushEdits(); send({ op: "add", after: cell.id, kind: "code" }); });
    b("✕", "delete", () => { flushEdits(); send({ op: "delete", id: cell.id }); });
  }
  cell.dom = { root, outputs, status, area };
  for (const o of cell.outputs || []) appendOutput(cell, o, outputs);
  setStatus(cell, cell.status);
  return root;
}

// A markdown cell is edited as markdown: the file's "# " before each line is taken off for the
// editor and put back as it is typed (Notebook.prose in Swift takes it off the same way). The
// blank lines around the prose (before the next cell's marker, the file's last newline) are kept
// as they were, and a line that would read as a cell marker ("# %%") is given a space.
const proseOf = body => body.split("\n").map(l => l.startsWith("#") ? l.slice(l.startsWith("# ") ? 2 : 1) : l).join("\n");
const commented = prose => prose.split("\n").map(l => !l ? "#" : "# " + (l.startsWith("%%") ? " " + l : l)).join("\n");

function editMarkdown(cell) {
  const area = el("textarea", { class: "md-source" });
  const [, lead, body, tail] = cell.source.match(/^(\n*)([\s\S]*?)(\n*)$/);
  area.value = proseOf(body);
  area.addEventListener("input", () => { cell.source = lead + commented(area.value) + tail; edited(cell); });
  area.addEventListener("blur", () => { flushEdits(); send({ op: "render", id: cell.id }); });
  cell.dom.root.querySelector(".prose").replaceWith(area);
  area.focus();
}

function focusLine(cell, line, column) {
  const area = cell.dom && cell.dom.area;
  if (!area) { cell.dom.root.scrollIntoView({ block: "center" }); return; }
  const lines = area.value.split("\n");
  let at = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i++) at += lines[i].length + 1;
  at += Math.max(0, Math.min((column || 1) - 1, (lines[line - 1] || "").length));
  area.focus();
  area.setSelectionRange(at, at);
  cell.dom.root.scrollIntoView({ block: "center" });
}

function render() {
  const main = document.querySelector("main");
  main.replaceChildren(...state.cells.map(renderCell));
  const m = state.meta;
  document.title = (m.name || "notebook") + " · trickbook";
  document.querySelector("header.bar h1").textContent = m.name || "notebook";
  const bits = [m.command, m.seed != null ? `seed ${m.seed}` : null, m.version, m.started].filter(Boolean);
  document.querySelector("header.bar .meta").textContent = bits.join(" · ");
}

// MARK: Live: the WebSocket to the trickbook process

let editTimers = {};
function edited(cell) {
  // This code cell and every cell after it that ran are stale until they run again (prose
  // changes nothing that runs).
  const k = state.cells.indexOf(cell);
  if (cell.kind === "code") {
    for (const c of state.cells.slice(k)) if (["ok", "error", "interrupted"].includes(c.status)) setStatus(c, "stale");
  }
  clearTimeout(editTimers[cell.id]);
  editTimers[cell.id] = setTimeout(() => send({ op: "edit", id: cell.id, source: cell.source }), 150);
}

function flushEdits() {
  for (const [id, t] of Object.entries(editTimers)) {
    clearTimeout(t);
    const cell = state.cells.find(c => String(c.id) === id);
    if (cell) send({ op: "edit", id: cell.id, source: cell.source });
  }
  editTimers = {};
}

function send(message) {
  if (state.socket && state.socket.readyState === 1) state.socket.send(JSON.stringify(message));
}

function run(ids) {
  flushEdits();
  for (const id of ids) {
    const cell = state.cells.find(c => c.id === id);
    if (cell && cell.kind === "code") setStatus(cell, "queued");
  }
  send({ op: "run", ids });
}

function notice(text) {
  const n = el("div", { class: "notice" }, text);
  document.body.append(n);
  setTimeout(() => n.remove(), 4000);
}

function receive(m) {
  const cell = m.id != null ? state.cells.find(c => c.id === m.id) : null;
  switch (m.ev) {
    case "notebook":
      state.meta = m.meta; state.cells = m.cells; render(); break;
    case "start":
      if (cell) { cell.outputs = []; cell.dom.outputs.replaceChildren(); setStatus(cell, "running"); }
      break;
    case "out":
      if (cell) { cell.outputs.push(m.output); appendOutput(cell, m.output); }
      break;
    case "done":
      if (cell) { cell.seconds = m.seconds; setStatus(cell, m.status); }
      if (m.snapshots != null) {
        const mb = b => (b / 1048576).toFixed(b < 10485760 ? 1 : 0) + " MB";
        document.querySelector("#snapshots").textContent = `undo holds ${mb(m.snapshots)} of ${mb(m.snapshotLimit)}`;
      }
      break;
    case "cells": {
      // Order or statuses changed (add, delete, move, undo, restart, interrupt). The records come
      // without outputs: a cell already drawn keeps its element, its outputs and its text (an
      // edit not yet sent included); only new cells are drawn.
      const known = new Map(state.cells.map(c => [c.id, c]));
      state.cells = m.cells.map(c => {
        const had = known.get(c.id);
        if (!had || !had.dom) return c;
        had.number = c.number;
        had.seconds = c.seconds;
        had.dom.root.querySelector(".num").textContent = `[${c.number}]`;
        setStatus(had, c.status);
        return had;
      });
      document.querySelector("main").replaceChildren(...state.cells.map(c => c.dom ? c.dom.root : renderCell(c)));
      break;
    }
    case "rendered":
      if (cell) { cell.html = m.html; cell.dom.root.replaceWith(renderCell(cell)); }
      break;
    case "notice":
      notice(m.text); break;
    case "conflict":
      if (confirm(m.text)) send({ op: "save", force: true });
      break;
  }
}

function connect() {
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("token", state.live.token);
  const ws = new WebSocket(url);
  state.socket = ws;
  ws.onmessage = e => receive(JSON.parse(e.data));
  ws.onclose = () => { notice("disconnected from trickbook"); document.body.classList.add("closed"); };
}

function toolbar() {
  const bar = document.querySelector("header.bar .actions");
  const b = (label, title, f) => bar.append(el("button", { title, onclick: f }, label));
  b("Run all", "run every code cell in order", () => run(state.cells.map(c => c.id)));
  b("Run above", "run every cell above the one last edited", () => {
    const k = state.lastCell != null ? state.cells.findIndex(c => c.id === state.lastCell) : -1;
    run(state.cells.slice(0, k < 0 ? state.cells.length : k).map(c => c.id));
  });
  b("Interrupt", "stop the running cell (variables keep their values)", () => send({ op: "interrupt" }));
  b("Restart", "a fresh session: every variable is gone", () => send({ op: "restart" }));
  b("Save", "write the notebook back to its file", () => { flushEdits(); send({ op: "save" }); });
  b("+ Code", "add a code cell at the end", () => send({ op: "add", kind: "code" }));
  b("+ Text", "add a markdown cell at the end", () => send({ op: "add", kind: "markdown" }));
  bar.append(el("span", { id: "snapshots", title: "memory the undo snapshots hold (each cell's state before it last ran)" }));
}

addEventListener("DOMContentLoaded", () => {
  const data = JSON.parse(document.getElementById("tb-data").textContent);
  state.meta = data.meta || {};
  state.cells = data.cells || [];
  state.live = data.live || null;
  if (state.live) { document.body.classList.add("live"); toolbar(); connect(); }
  // The cell last worked in, for "Run above" (clicking the button moves the focus to it).
  document.addEventListener("focusin", e => {
    const c = e.target.closest && e.target.closest(".cell");
    if (c) state.lastCell = Number(c.id.slice("cell-".length));
  });
  render();
});
