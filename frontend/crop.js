// The crop box over the query preview: drawn with a pointer (mouse, pen, touch), moved and resized by keyboard.
// Its value is {x, y, w, h} as fractions of the shown (EXIF-oriented) photo, or null for the whole photo.
"use strict";

const MIN_CROP = 0.04;   // a drag shorter than this (fraction of the photo) is a click, not a crop

export class CropBox {
  constructor({ stage, layer, box, selectButton, clearButton, isActive, onSearch }) {
    Object.assign(this, { stage, layer, box, selectButton, clearButton, isActive, onSearch });
    this.crop = null;
    this.start = null;
    layer.addEventListener("pointerdown", (event) => this.pointerDown(event));
    layer.addEventListener("pointermove", (event) => this.pointerMove(event));
    layer.addEventListener("pointerup", (event) => this.pointerUp(event));
    layer.addEventListener("pointercancel", () => { this.start = null; });
    box.addEventListener("keydown", (event) => this.keyDown(event));
    selectButton.addEventListener("click", () => {
      this.set({ x: 0.2, y: 0.2, w: 0.6, h: 0.6 });
      box.focus();
      onSearch();
    });
    clearButton.addEventListener("click", () => { this.set(null); selectButton.focus(); onSearch(); });
  }

  get value() { return this.crop ? roundCrop(this.crop) : null; }

  set(crop) {
    this.crop = crop;
    this.box.hidden = !crop;
    this.clearButton.hidden = !crop;
    this.selectButton.hidden = !!crop;
    this.stage.classList.toggle("has-crop", !!crop);
    if (!crop) return;
    Object.assign(this.box.style, {
      left: `${crop.x * 100}%`, top: `${crop.y * 100}%`, width: `${crop.w * 100}%`, height: `${crop.h * 100}%`,
    });
  }

  point(event) {
    const rect = this.layer.getBoundingClientRect();
    return {
      x: clamp((event.clientX - rect.left) / rect.width, 0, 1),
      y: clamp((event.clientY - rect.top) / rect.height, 0, 1),
    };
  }

  pointerDown(event) {
    if (!this.isActive()) return;
    event.preventDefault();
    this.layer.setPointerCapture(event.pointerId);
    this.start = this.point(event);
    this.before = this.crop;
  }

  pointerMove(event) {
    if (this.start) this.set(boxFrom(this.start, this.point(event)));
  }

  pointerUp(event) {
    if (!this.start) return;
    const crop = boxFrom(this.start, this.point(event));
    this.start = null;
    if (crop.w < MIN_CROP || crop.h < MIN_CROP) {
      // A click, not a drag: back to the whole photo, and the results must follow (they showed the region).
      this.set(null);
      if (this.before) this.onSearch();
      return;
    }
    this.set(crop);
    this.onSearch();
  }

  keyDown(event) {
    if (!this.crop) return;
    const step = event.altKey ? 0.01 : 0.04;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (event.key in moves) {
      event.preventDefault();
      const [dx, dy] = moves[event.key];
      const c = Object.assign({}, this.crop);
      if (event.shiftKey) {
        c.w = clamp(c.w + dx, MIN_CROP, 1 - c.x);
        c.h = clamp(c.h + dy, MIN_CROP, 1 - c.y);
      } else {
        c.x = clamp(c.x + dx, 0, 1 - c.w);
        c.y = clamp(c.y + dy, 0, 1 - c.h);
      }
      this.set(c);
    } else if (event.key === "Enter") {
      event.preventDefault();
      this.onSearch();
    } else if (["Delete", "Backspace", "Escape"].includes(event.key)) {
      event.preventDefault();
      this.set(null);
      this.selectButton.focus();
      this.onSearch();
    }
  }
}

function boxFrom(a, b) {
  return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y) };
}

// Four decimals, and never past the right or bottom edge after rounding (the API refuses x + w > 1).
function roundCrop(crop) {
  const r = (v) => Math.round(v * 10000) / 10000;
  const x = r(crop.x), y = r(crop.y);
  return { x, y, w: Math.min(r(crop.w), r(1 - x)), h: Math.min(r(crop.h), r(1 - y)) };
}

function clamp(value, low, high) { return Math.min(high, Math.max(low, value)); }
