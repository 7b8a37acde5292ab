// Match wording for a cosine score, read against the rest of its answer. The one place the UI decides it.
//
// The numbers come from bench/bench_match_tiers.py (docs/BENCHMARKS.md, "Match tiers": fitted on half of a
// clothing sample, reported on the other half; model efficientnet-lite2-fp32 ... rmac+colour-hsv52-v2):
// - "Very close" (a strong match): a score of STRONG.score or more on its own, OR the answer's best match when it
//   scores at least STRONG.floor and stands out from the pack (the STRONG.pack-th match scores at most
//   STRONG.standout times the best). The exact item photographed differently (cropped, rotated, blurred, small,
//   on clutter: the synthetic shopper benchmark) scores 0.76-0.93, like a good neighbour of the same kind, but it
//   stands clear of the rest of its answer, where the best of many alike does not. Measured: the exact item,
//   ranked first, reads "Very close" in 84 % of shopper answers (4.9 % with the 0.95-only rule before); 80 % of
//   what the rule calls "Very close" in "more like this" answers is the same kind of item, 96 % in shopper ones.
// - "Similar" and "Loosely related": the score bands where same-category precision stays at 0.6 and 0.4 in
//   "more like this" answers. Weaker matches are hidden by default.
// They belong to the default model as measured; another model, or new vectors, needs the bench again.
"use strict";

export const STRONG = { score: 0.93, floor: 0.60, pack: 10, standout: 0.92 };
export const TIERS = [
  { name: "Very close", level: "close", from: STRONG.score },
  { name: "Similar", level: "similar", from: 0.80 },
  { name: "Loosely related", level: "loose", from: 0.55 },
];
const WEAK = { name: "Weak match", level: "weak", from: -1 };

// What the tiers need to know of an answer (its scores, best first): the best score, and the pack's score over
// it (the STRONG.pack-th score, or the last when fewer came back; Infinity for an answer of one).
export function answerShape(scores) {
  const best = scores.length ? scores[0] : 0;
  const packIndex = Math.min(STRONG.pack, scores.length) - 1;
  return { best, packRatio: packIndex >= 1 && best > 0 ? scores[packIndex] / best : Infinity };
}

// Whether `score` reads as a strong match in an answer of this shape (answerShape); without one, by score alone.
export function isStrong(score, shape = null) {
  if (score >= STRONG.score) return true;
  return !!shape && score >= shape.best && score >= STRONG.floor && shape.packRatio <= STRONG.standout;
}

export function matchTier(score, shape = null) {
  if (isStrong(score, shape)) return TIERS[0];
  return TIERS.slice(1).find((tier) => score >= tier.from) || WEAK;
}

export function isWeak(score, shape = null) { return matchTier(score, shape) === WEAK; }

// The raw score, for the badge's tooltip.
export function scoreNote(score) {
  return `Similarity score ${score.toFixed(3)} (1.000 is the same photo)`;
}
