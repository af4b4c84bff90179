// Child mode helpers: speech, the child-mode flag, history trapping and the drawing canvas.
// Used by src/features/child/mod.rs.

const KEY = 'attune-child-mode';

// Reads text aloud; never waits for it and works when no voice is installed.
export function speak(text, first) {
  try {
    const s = window.speechSynthesis;
    if (!s || typeof SpeechSynthesisUtterance === 'undefined') return;
    if (first) s.cancel();
    const u = new SpeechSynthesisUtterance(text);
    u.rate = 0.9;
    s.speak(u);
  } catch (_) { /* no speech here: the words are on screen */ }
}

export function loadFlag() {
  try { return window.sessionStorage.getItem(KEY) || ''; } catch (_) { return ''; }
}
export function saveFlag(json) {
  try { window.sessionStorage.setItem(KEY, json); } catch (_) { /* ignore */ }
}
export function clearFlag() {
  try { window.sessionStorage.removeItem(KEY); } catch (_) { /* ignore */ }
}

// Keeps the back button inside child mode: every screen adds a history entry, and going back
// adds one again.
let trapped = false;
export function trapHistory() {
  window.history.pushState({ child: true }, '', '/child');
  if (trapped) return;
  trapped = true;
  window.addEventListener('popstate', () => {
    if (loadFlag()) window.history.pushState({ child: true }, '', '/child');
  });
}

// Where a pointer was released: the column (data-column) under it, or ''.
export function columnAt(x, y) {
  const el = document.elementFromPoint(x, y);
  const col = el && el.closest('[data-column]');
  return col ? col.getAttribute('data-column') : '';
}

// A drawing canvas: thick strokes in the chosen colour, eraser (white), undo. Strokes are
// kept in CSS pixels of a fixed 1000-wide space so they redraw the same at any size.
export function attachDrawing(canvas, initial, onChange) {
  const ctx = canvas.getContext('2d');
  let strokes = [];
  try { strokes = JSON.parse(initial || '[]') || []; } catch (_) { strokes = []; }
  let colour = '#1b1d1f';
  let current = null;
  const W = 1000;
  const scale = () => canvas.getBoundingClientRect().width / W;
  const draw = (s) => {
    const k = scale();
    ctx.strokeStyle = s.c;
    ctx.lineWidth = s.w * k;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    s.p.forEach(([x, y], i) => (i ? ctx.lineTo(x * k, y * k) : ctx.moveTo(x * k, y * k)));
    if (s.p.length === 1) ctx.lineTo(s.p[0][0] * k + 0.1, s.p[0][1] * k + 0.1);
    ctx.stroke();
  };
  const redraw = () => {
    const ratio = window.devicePixelRatio || 1;
    const r = canvas.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(r.width * ratio));
    canvas.height = Math.max(1, Math.round(r.height * ratio));
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, r.width, r.height);
    strokes.forEach(draw);
  };
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    const k = scale();
    return [Math.round((e.clientX - r.left) / k), Math.round((e.clientY - r.top) / k)];
  };
  canvas.addEventListener('pointerdown', (e) => {
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    current = { c: colour, w: colour === '#ffffff' ? 60 : 24, p: [point(e)] };
    strokes.push(current);
    draw(current);
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!current) return;
    current.p.push(point(e));
    redraw();
  });
  const end = () => {
    if (!current) return;
    current = null;
    onChange(JSON.stringify(strokes));
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  window.addEventListener('resize', redraw);
  redraw();
  return {
    setColour: (c) => { colour = c; },
    undo: () => { strokes.pop(); redraw(); onChange(JSON.stringify(strokes)); },
    strokes: () => JSON.stringify(strokes),
    count: () => strokes.length,
    toPng: () => canvas.toDataURL('image/png').split(',')[1] || '',
  };
}
