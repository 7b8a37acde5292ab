// "Your photo", small, in the sticky bar above the results while the query photo itself is scrolled out of view:
// on a phone the photo sits above the results and is gone after the first swipe. A tap scrolls back to it.
// On a wide screen the photo stays beside the results, so it never scrolls away and the thumbnail never shows.
"use strict";

export class PinnedQuery {
  // `elements` = {photo (the query photo's stage), thumb (the button), image (its <img>)}.
  constructor({ photo, thumb, image }) {
    Object.assign(this, { photo, thumb, image });
    this.src = null;
    this.photoInView = true;
    if (typeof IntersectionObserver === "function") {
      new IntersectionObserver(([entry]) => {
        this.photoInView = entry.isIntersecting;
        this.update();
      }, { threshold: 0 }).observe(photo);
    }
  }

  // The shown query's photo (null: none) and its caption, for the thumbnail's accessible name.
  set(src, caption = "Your photo") {
    this.src = src;
    if (src && this.image.getAttribute("src") !== src) this.image.src = src;
    this.thumb.setAttribute("aria-label", `${caption}: show the photo`);
    this.update();
  }

  update() { this.thumb.hidden = !this.src || this.photoInView; }

  reveal() {
    const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    this.photo.scrollIntoView({ behavior: smooth ? "smooth" : "auto", block: "center" });
  }
}
